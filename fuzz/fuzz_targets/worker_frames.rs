//! The frames between `warden serve` and its workers: any byte stream, cut into reads of any
//! sizes, gives the async reader the server uses (`FrameReader`) exactly the frames the
//! blocking reader a worker uses (`read_frame`) gives, and the same end; no frame larger than
//! the bound is ever held; every frame read re-encodes to the bytes it came from; and every
//! payload decodes as a message or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};
use warden_cli::serve::proto;

/// The bound the fuzz target reads under: small, so that the bound itself is exercised.
const MAX: usize = 4096;

/// Hands out `data` in reads whose sizes come from `cuts`.
struct Chunked<'a> {
    data: &'a [u8],
    cuts: &'a [u8],
}

impl AsyncRead for Chunked<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let want = match self.cuts.split_first() {
            Some((c, rest)) => {
                let c = usize::from(*c) + 1;
                self.cuts = rest;
                c
            }
            None => usize::MAX,
        };
        let n = want.min(buf.remaining()).min(self.data.len());
        let (now, later) = self.data.split_at(n);
        buf.put_slice(now);
        self.data = later;
        Poll::Ready(Ok(()))
    }
}

fn decode(kind: u8, payload: &[u8]) {
    match kind {
        proto::KIND_REQUEST => drop(serde_json::from_slice::<proto::Request>(payload)),
        proto::KIND_READY => drop(serde_json::from_slice::<proto::Ready>(payload)),
        proto::KIND_ANSWER => drop(serde_json::from_slice::<proto::Answer>(payload)),
        proto::KIND_AUDIT => drop(serde_json::from_slice::<serde_json::Value>(payload)),
        _ => {}
    }
}

// The input: one byte saying how many of the rest are read sizes, the sizes, then the stream.
fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let (cuts, stream) = rest.split_at(usize::from(n).min(rest.len()));

    let mut blocking = Vec::new();
    let mut r = stream;
    let blocking_end = loop {
        match proto::read_frame(&mut r, MAX) {
            Ok(Some(f)) => blocking.push(f),
            Ok(None) => break Ok(()),
            Err(e) => break Err(e.kind()),
        }
    };

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let (framed, framed_end) = rt.block_on(async {
        let mut reader = proto::FrameReader::new(Chunked { data: stream, cuts }, MAX);
        let mut frames = Vec::new();
        loop {
            match reader.next().await {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => return (frames, Ok(())),
                Err(e) => return (frames, Err(e.kind())),
            }
        }
    });
    assert_eq!(blocking, framed, "the two readers disagree on the frames");
    assert_eq!(blocking_end, framed_end, "the two readers disagree on the end");

    let mut offset = 0;
    for (kind, payload) in &blocking {
        assert!(payload.len() <= MAX);
        let bytes = proto::frame(*kind, payload);
        assert_eq!(&stream[offset..offset + bytes.len()], bytes.as_slice());
        offset += bytes.len();
        decode(*kind, payload);
    }
});
