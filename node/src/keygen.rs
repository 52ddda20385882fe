//! `ordo keygen`: a fresh ed25519 key, printed or written as a key file (mode 0600).

use anyhow::Context;
use ordo_chain::Keypair;
use ordo_genesis::KeyFile;

use crate::cli::KeygenArgs;

pub fn run(args: KeygenArgs) -> anyhow::Result<()> {
    let key = Keypair::generate();
    match args.out {
        Some(path) => {
            KeyFile::write_new(&key, &path).with_context(|| "could not write the key file; choose another --out")?;
            println!("{}", key.public());
            eprintln!("wrote {} (mode 0600); the line above is its public key", path.display());
        }
        None => println!("{}", serde_json::to_string_pretty(&KeyFile::from_keypair(&key))?),
    }
    Ok(())
}
