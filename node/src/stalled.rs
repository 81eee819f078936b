//! A stream whose writes give up when the other side stops reading.
//!
//! An HTTP answer is made whole, then written: a client that asks for an
//! export page and never reads it would hold the page in memory for as long
//! as its connection lasts, and 512 such clients a page each. Wrapped in
//! `Stalled`, a write that makes no progress for `limit` fails (TimedOut),
//! and the server closes the connection. A slow reader that keeps reading is
//! not cut off: the limit is on no progress at all, not on the whole answer.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

pub struct Stalled<S> {
    inner: S,
    limit: Duration,
    /// Armed while a write is waiting; reset at each byte written.
    deadline: Option<Pin<Box<Sleep>>>,
}

impl<S> Stalled<S> {
    pub fn new(inner: S, limit: Duration) -> Stalled<S> {
        Stalled {
            inner,
            limit,
            deadline: None,
        }
    }

    /// A write is waiting: it fails once it has waited `limit`.
    fn waiting(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Error> {
        let limit = self.limit;
        let deadline = self
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(Instant::now() + limit)));
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("the client read nothing for {limit:?}"),
            )),
            Poll::Pending => Poll::Pending,
        }
    }

    /// `polled` of a write: its progress disarms the deadline, its waiting
    /// arms it.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        match polled {
            Poll::Pending => match self.waiting(cx) {
                Poll::Ready(e) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            },
            ready => {
                self.deadline = None;
                ready
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Stalled<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Stalled<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const LIMIT: Duration = Duration::from_secs(30);

    #[tokio::test(start_paused = true)]
    async fn a_write_the_other_side_never_reads_fails_after_the_limit() {
        let (ours, _theirs) = tokio::io::duplex(4096);
        let mut ours = Stalled::new(ours, LIMIT);
        let began = Instant::now();
        let e = ours.write_all(&[0; 1 << 20]).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
        assert_eq!(began.elapsed(), LIMIT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_that_keeps_reading_gets_everything() {
        let (ours, mut theirs) = tokio::io::duplex(4096);
        let mut ours = Stalled::new(ours, LIMIT);
        let reader = tokio::spawn(async move {
            let mut got = 0;
            let mut buf = [0; 4096];
            loop {
                // Less than the limit between two reads, many times over it
                // in all.
                tokio::time::sleep(LIMIT / 2).await;
                match theirs.read(&mut buf).await.unwrap() {
                    0 => return got,
                    n => got += n,
                }
            }
        });
        let began = Instant::now();
        ours.write_all(&[0; 64 * 1024]).await.unwrap();
        ours.shutdown().await.unwrap();
        drop(ours);
        assert_eq!(reader.await.unwrap(), 64 * 1024);
        assert!(began.elapsed() > LIMIT * 4);
    }
}
