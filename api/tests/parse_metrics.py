"""Parses a /metrics body (read from stdin) with the Prometheus project's own OpenMetrics parser
(the `prometheus_client` package) and prints it as JSON, so that api/tests/metrics.rs checks the
exposition with the parser a scraper uses rather than with string matching.

Output: {"families": [{"name", "type", "unit", "samples": [{"name", "labels", "value"}]}]}
A body the parser refuses exits 1 with its error on stderr.
"""

import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families


def main() -> int:
    text = sys.stdin.read()
    try:
        families = [
            {
                "name": f.name,
                "type": f.type,
                "unit": f.unit,
                "samples": [{"name": s.name, "labels": s.labels, "value": s.value} for s in f.samples],
            }
            for f in text_string_to_metric_families(text)
        ]
    except Exception as e:  # the parser raises ValueError and friends
        print(f"not valid OpenMetrics: {e}", file=sys.stderr)
        return 1
    json.dump({"families": families}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
