//! Bounded pipes of buffers between async code and a blocking thread, each
//! way: what one side writes is gathered into buffers of `BATCH` bytes, and
//! each full buffer crosses whole, then comes back to be filled again. One
//! copy and one hand-over per batch, where a byte pipe (`tokio::io::duplex`
//! through `SyncIoBridge`) copies twice and wakes the other side per write.
//! `pipe` goes from async code to a blocking thread (a backup's tar into the
//! archive); `pipe_back` the other way (an archive's member into a
//! restore's tar), read in place (`AsyncBufRead`).
//!
//! **Invariants:** at most `IN_FLIGHT` buffers wait between the two sides,
//! so memory is bounded whatever the stream's size; when the receiving side
//! stops (drops its end), the sender's next hand-over fails.

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

/// A pipe from a blocking thread to async code (see the module).
pub(super) fn pipe_back() -> (BatchFiller, BatchSource) {
    let (full, receive) = tokio::sync::mpsc::channel(IN_FLIGHT);
    let (back, free) = sync_channel(IN_FLIGHT + 2);
    (BatchFiller { full, free }, BatchSource { receive, back, current: Vec::new(), start: 0, end: 0 })
}

/// The blocking end of `pipe_back`.
pub(super) struct BatchFiller {
    full: tokio::sync::mpsc::Sender<(Vec<u8>, usize)>,
    free: Receiver<Vec<u8>>,
}

impl BatchFiller {
    /// Sends everything `from` reads, in batches read straight into the
    /// buffers; the number of bytes. Call on a blocking thread.
    pub(super) fn copy_from(self, from: &mut dyn io::Read) -> io::Result<u64> {
        let mut total = 0u64;
        loop {
            let mut buf = self.free.try_recv().unwrap_or_else(|_| vec![0u8; BATCH]);
            let mut n = 0;
            while n < buf.len() {
                match from.read(&mut buf[n..]) {
                    Ok(0) => break,
                    Ok(k) => n += k,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            if n == 0 {
                return Ok(total);
            }
            total += n as u64;
            self.full.blocking_send((buf, n)).map_err(|_| stopped())?;
        }
    }
}

/// The async end of `pipe_back`: the batches, read in place.
pub(super) struct BatchSource {
    receive: tokio::sync::mpsc::Receiver<(Vec<u8>, usize)>,
    back: SyncSender<Vec<u8>>,
    current: Vec<u8>,
    start: usize,
    end: usize,
}

impl tokio::io::AsyncRead for BatchSource {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let data = ready!(tokio::io::AsyncBufRead::poll_fill_buf(self.as_mut(), cx))?;
        let n = data.len().min(out.remaining());
        out.put_slice(&data[..n]);
        tokio::io::AsyncBufRead::consume(self, n);
        Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncBufRead for BatchSource {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let this = self.get_mut();
        if this.start == this.end {
            match ready!(this.receive.poll_recv(cx)) {
                Some((buf, n)) => {
                    let used = std::mem::replace(&mut this.current, buf);
                    if !used.is_empty() {
                        let _ = this.back.try_send(used);
                    }
                    (this.start, this.end) = (0, n);
                }
                None => return Poll::Ready(Ok(&[])),
            }
        }
        Poll::Ready(Ok(&this.current[this.start..this.end]))
    }

    fn consume(self: Pin<&mut Self>, amount: usize) {
        let this = self.get_mut();
        this.start = (this.start + amount).min(this.end);
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

    #[tokio::test]
    async fn batches_back_arrive_in_order_and_a_stopped_source_fails_the_filler() {
        use tokio::io::AsyncReadExt;
        let expected: Vec<u8> = (0..3_000_000u32).map(|i| (i ^ (i >> 9)) as u8).collect();
        let (filler, mut source) = pipe_back();
        let data = expected.clone();
        // Reads of odd sizes, as a decoder gives them.
        let mut reader = io::BufReader::with_capacity(977, io::Cursor::new(data));
        let sent = tokio::task::spawn_blocking(move || filler.copy_from(&mut reader));
        let mut got = Vec::new();
        source.read_to_end(&mut got).await.unwrap();
        assert_eq!(sent.await.unwrap().unwrap(), expected.len() as u64);
        assert!(got == expected, "the bytes arrive in order");

        let (filler, source) = pipe_back();
        drop(source);
        let mut endless = io::repeat(7);
        let err = tokio::task::spawn_blocking(move || filler.copy_from(&mut endless)).await.unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }
}
