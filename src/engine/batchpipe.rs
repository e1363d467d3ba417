//! A bounded pipe of buffers from async code to a blocking thread: what the
//! async side writes is gathered into buffers of `BATCH` bytes, and each
//! full buffer crosses whole, then comes back to be filled again. One copy
//! and one hand-over per batch, where a byte pipe (`tokio::io::duplex` read
//! through `SyncIoBridge`) copies twice and wakes the reader per write.
//!
//! **Invariants:** at most `IN_FLIGHT` buffers wait between the two sides,
//! so memory is bounded whatever the stream's size; when the blocking side
//! stops (drops its end), the writer's next hand-over fails.

use std::io::{self, Write};
use std::pin::Pin;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::task::{Context, Poll, ready};

use tokio::io::AsyncWrite;
use tokio_util::sync::PollSender;

/// Bytes per buffer.
const BATCH: usize = 256 * 1024;
/// Full buffers waiting for the blocking side.
const IN_FLIGHT: usize = 4;

/// A pipe's two ends.
pub(super) fn pipe() -> (BatchWriter, BatchReader) {
    let (full, receive) = tokio::sync::mpsc::channel(IN_FLIGHT);
    let (back, free) = sync_channel(IN_FLIGHT + 2);
    (BatchWriter { full: PollSender::new(full), free, buf: Vec::with_capacity(BATCH) }, BatchReader { receive, back })
}

/// The async end.
pub(super) struct BatchWriter {
    full: PollSender<Vec<u8>>,
    free: Receiver<Vec<u8>>,
    buf: Vec<u8>,
}

impl BatchWriter {
    /// Hands the buffer over once the channel has room.
    fn poll_hand_over(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.full.poll_reserve(cx)).map_err(|_| stopped())?;
        let next = self.free.try_recv().unwrap_or_else(|_| Vec::with_capacity(BATCH));
        let full = std::mem::replace(&mut self.buf, next);
        self.full.send_item(full).map_err(|_| stopped())?;
        Poll::Ready(Ok(()))
    }
}

fn stopped() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the reading side stopped")
}

impl AsyncWrite for BatchWriter {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.buf.len() >= BATCH {
            ready!(this.poll_hand_over(cx))?;
        }
        let n = data.len().min(BATCH - this.buf.len());
        this.buf.extend_from_slice(&data[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.buf.is_empty() {
            ready!(this.poll_hand_over(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        self.get_mut().full.close();
        Poll::Ready(Ok(()))
    }
}

/// The blocking end.
pub(super) struct BatchReader {
    receive: tokio::sync::mpsc::Receiver<Vec<u8>>,
    back: SyncSender<Vec<u8>>,
}

impl BatchReader {
    /// Writes everything that arrives to `to`, until the writer is dropped
    /// or shut down; the number of bytes. Call on a blocking thread.
    pub(super) fn copy_to(mut self, to: &mut dyn Write) -> io::Result<u64> {
        let mut total = 0u64;
        while let Some(mut buf) = self.receive.blocking_recv() {
            to.write_all(&buf)?;
            total += buf.len() as u64;
            buf.clear();
            let _ = self.back.try_send(buf);
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;

    #[tokio::test]
    async fn bytes_cross_in_order_and_a_stopped_reader_fails_the_writer() {
        let (mut w, r) = pipe();
        let reader = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            r.copy_to(&mut out).map(|_| out)
        });
        let mut expected = Vec::new();
        for i in 0..3000u32 {
            let piece: Vec<u8> = (0..(i % 977)).map(|j| (i ^ j) as u8).collect();
            w.write_all(&piece).await.unwrap();
            expected.extend_from_slice(&piece);
        }
        w.shutdown().await.unwrap();
        assert_eq!(reader.await.unwrap().unwrap(), expected);

        let (mut w, r) = pipe();
        drop(r);
        let err = async {
            for _ in 0..64 {
                w.write_all(&[0u8; 64 * 1024]).await?;
            }
            w.flush().await
        }
        .await
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }
}
