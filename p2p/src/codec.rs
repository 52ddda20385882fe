//! The request-response wire codec: one length-prefixed frame per request and per response
//! (`u32 len || bytes`, big-endian), with separate size limits checked before any allocation.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::request_response;
use libp2p::StreamProtocol;

/// Ships opaque byte frames; the meaning of the bytes belongs to the node.
#[derive(Debug, Clone)]
pub struct FrameCodec {
    pub max_request_bytes: usize,
    pub max_response_bytes: usize,
    /// Counts inbound frames refused for size. libp2p reports no event for a request that failed
    /// before it was decoded, so the codec is the only place that sees these.
    pub oversize_frames: Arc<AtomicU64>,
}

async fn read_frame<T: AsyncRead + Unpin + Send>(
    io: &mut T,
    max_bytes: usize,
    oversize_frames: &AtomicU64,
) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max_bytes {
        oversize_frames.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(size_bytes = len, max_bytes, "oversize frame refused");
        // Refusing before reading keeps a hostile length from costing memory.
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds the limit of {max_bytes} bytes"),
        ));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    Ok(buf)
}

async fn write_frame<T: AsyncWrite + Unpin + Send>(io: &mut T, bytes: &[u8], max_bytes: usize) -> io::Result<()> {
    if bytes.len() > max_bytes {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("frame of {} bytes exceeds the limit of {max_bytes} bytes", bytes.len()),
        ));
    }
    io.write_all(&(bytes.len() as u32).to_be_bytes()).await?;
    io.write_all(bytes).await?;
    io.flush().await
}

impl request_response::Codec for FrameCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, self.max_request_bytes, &self.oversize_frames).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io, self.max_response_bytes, &self.oversize_frames).await
    }

    async fn write_request<T>(&mut self, _: &StreamProtocol, io: &mut T, req: Vec<u8>) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &req, self.max_request_bytes).await
    }

    async fn write_response<T>(&mut self, _: &StreamProtocol, io: &mut T, res: Vec<u8>) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &res, self.max_response_bytes).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::io::Cursor;
    use request_response::Codec;

    fn proto() -> StreamProtocol {
        StreamProtocol::new("/test/1")
    }

    #[tokio::test]
    async fn frames_roundtrip_and_limits_hold() {
        let mut c = FrameCodec { max_request_bytes: 8, max_response_bytes: 16, oversize_frames: Arc::default() };
        let mut buf = Cursor::new(Vec::new());
        c.write_request(&proto(), &mut buf, b"hello".to_vec()).await.unwrap();
        assert_eq!(buf.get_ref()[..4], [0, 0, 0, 5]);
        buf.set_position(0);
        assert_eq!(c.read_request(&proto(), &mut buf).await.unwrap(), b"hello");

        // A request over the limit is refused when writing and when reading.
        let mut out = Cursor::new(Vec::new());
        assert!(c.write_request(&proto(), &mut out, vec![0; 9]).await.is_err());
        let mut big = Cursor::new(Vec::new());
        c.write_response(&proto(), &mut big, vec![7; 9]).await.unwrap();
        big.set_position(0);
        let err = c.read_request(&proto(), &mut big).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(c.oversize_frames.load(Ordering::Relaxed), 1);
        big.set_position(0);
        assert_eq!(c.read_response(&proto(), &mut big).await.unwrap(), vec![7; 9]);

        // A truncated frame is an error, not a short message.
        let mut cut = Cursor::new(vec![0, 0, 0, 4, 1, 2]);
        assert!(c.read_request(&proto(), &mut cut).await.is_err());
    }
}
