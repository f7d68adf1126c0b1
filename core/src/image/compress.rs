//! Layer compression on every core, with bytes that do not depend on the core count.
//!
//! Gzip ([`ParallelGzip`]) is pigz's scheme: the input is cut into fixed [`BLOCK`]-sized blocks,
//! each compressed by a fresh raw-deflate compressor primed with the last 32 KiB of the block
//! before it and ended with a sync flush (the last one with a final block), and the pieces are
//! written in order inside one gzip member with the combined CRC-32. Fixed blocks and fresh
//! compressors make the output a function of the input alone, so a layer's digest is the same on
//! a laptop and on a 64-core builder. (A compressor reused across blocks does not give that: its
//! output depends on what it compressed before.) Level 1, as upstream's `gzip.BestSpeed`.
//! A block that samples of it say will not compress (embedded archives, images, random data) is
//! written as stored deflate blocks instead: deflating it would cost a core 1–3 ms per block to
//! gain nothing. The samples are the block's own bytes, so that choice too is the input's alone.
//!
//! Zstandard ([`Compression::Zstd`]) uses libzstd's own workers, whose output is the same for
//! any number of workers from one up.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use flate2::{Compress, Crc, FlushCompress, Status};

/// Input bytes per independently compressed gzip block.
pub const BLOCK: usize = 256 * 1024;
/// The deflate window: how much of the previous block primes the next.
const DICTIONARY: usize = 32 * 1024;

/// How ko compresses its layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// `application/vnd.…tar+gzip` (the default, what every registry and runtime takes).
    #[default]
    Gzip,
    /// `application/vnd.oci.image.layer.v1.tar+zstd`.
    Zstd,
}

impl Compression {
    /// Parses `gzip` or `zstd`.
    pub fn parse(s: &str) -> Option<Compression> {
        match s {
            "gzip" => Some(Compression::Gzip),
            "zstd" => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// The name, as the option takes it.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }

    /// The name in layer cache keys. It changes whenever the bytes made from one input change,
    /// so that digests remembered by another version of ko are not trusted.
    pub fn cache_name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip.2",
            Compression::Zstd => "zstd",
        }
    }
}

/// Threads compressing one layer: every core (at least one).
pub fn threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// A compressed stream into `W`: gzip or zstd, on `threads` threads.
pub enum Compressor<W: Write> {
    Gzip(ParallelGzip<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write + Send> Compressor<W> {
    pub fn new(kind: Compression, inner: W, threads: usize) -> io::Result<Self> {
        Ok(match kind {
            Compression::Gzip => Compressor::Gzip(ParallelGzip::new(inner, threads)),
            Compression::Zstd => {
                let mut encoder = zstd::stream::write::Encoder::new(inner, 1)?;
                // Always at least one worker: libzstd's output with workers differs from without.
                encoder.multithread(threads.max(1) as u32)?;
                Compressor::Zstd(encoder)
            }
        })
    }

    /// Ends the stream and returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Compressor::Gzip(g) => g.finish(),
            Compressor::Zstd(z) => z.finish(),
        }
    }
}

impl<W: Write + Send> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::Gzip(g) => g.write(buf),
            Compressor::Zstd(z) => z.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Compressor::Gzip(g) => g.flush(),
            Compressor::Zstd(z) => z.flush(),
        }
    }
}

/// A compressed block and the CRC-32 of its input.
type Compressed = io::Result<(Vec<u8>, Crc)>;

/// One block to compress: its bytes, the dictionary before it, whether it ends the stream.
struct Job {
    input: Vec<u8>,
    dictionary: Vec<u8>,
    last: bool,
    done: mpsc::Sender<Compressed>,
}

/// A deterministic gzip writer that compresses blocks on worker threads (see the module docs).
pub struct ParallelGzip<W: Write> {
    inner: W,
    block: Vec<u8>,
    dictionary: Vec<u8>,
    /// Blocks sent to workers, oldest first.
    pending: VecDeque<mpsc::Receiver<Compressed>>,
    jobs: Option<mpsc::Sender<Job>>,
    workers: Vec<std::thread::JoinHandle<()>>,
    threads: usize,
    crc: Crc,
    header_written: bool,
}

impl<W: Write> ParallelGzip<W> {
    /// A writer compressing on `threads` threads (1: on the writing thread itself).
    pub fn new(inner: W, threads: usize) -> Self {
        ParallelGzip {
            inner,
            block: Vec::with_capacity(BLOCK),
            dictionary: Vec::new(),
            pending: VecDeque::new(),
            jobs: None,
            workers: Vec::new(),
            threads: threads.max(1),
            crc: Crc::new(),
            header_written: false,
        }
    }

    /// Starts the workers on the first full block (a small layer never starts any).
    fn start_workers(&mut self) {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..self.threads {
            let rx = rx.clone();
            let worker = std::thread::Builder::new().name("ko-gzip".into()).spawn(move || {
                loop {
                    let job = match rx.lock().unwrap_or_else(|p| p.into_inner()).recv() {
                        Ok(job) => job,
                        Err(_) => return,
                    };
                    let result = compress_block(&job.input, &job.dictionary, job.last);
                    let _ = job.done.send(result);
                }
            });
            // Without a worker thread the block is compressed on the writing thread instead.
            if let Ok(handle) = worker {
                self.workers.push(handle);
            }
        }
        if !self.workers.is_empty() {
            self.jobs = Some(tx);
        }
    }

    /// Hands the current block on (to a worker, or compresses it here with one thread).
    fn submit(&mut self, last: bool) -> io::Result<()> {
        if !self.header_written {
            // ID1 ID2, deflate, no flags, mtime 0, no extra flags, OS unknown.
            self.inner.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255])?;
            self.header_written = true;
        }
        let input = std::mem::replace(&mut self.block, Vec::with_capacity(if last { 0 } else { BLOCK }));
        let tail = input.len().saturating_sub(DICTIONARY);
        let next_dictionary = input[tail..].to_vec();
        let dictionary = std::mem::replace(&mut self.dictionary, next_dictionary);
        if self.threads > 1 && self.jobs.is_none() && self.workers.is_empty() && !last {
            self.start_workers();
        }
        let (done, result) = mpsc::channel();
        match &self.jobs {
            Some(jobs) => {
                if let Err(mpsc::SendError(job)) = jobs.send(Job { input, dictionary, last, done: done.clone() }) {
                    let _ = done.send(compress_block(&job.input, &job.dictionary, last));
                }
            }
            None => {
                let _ = done.send(compress_block(&input, &dictionary, last));
            }
        }
        self.pending.push_back(result);
        // Keep at most two blocks per worker in flight: memory stays a few MiB.
        while self.pending.len() > 2 * self.threads {
            self.write_oldest()?;
        }
        Ok(())
    }

    fn write_oldest(&mut self) -> io::Result<()> {
        let Some(next) = self.pending.pop_front() else { return Ok(()) };
        let (bytes, crc) = next.recv().map_err(|_| io::Error::other("a gzip worker stopped"))??;
        self.crc.combine(&crc);
        self.inner.write_all(&bytes)
    }

    /// Compresses what is left, writes the trailer and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.submit(true)?;
        while !self.pending.is_empty() {
            self.write_oldest()?;
        }
        let (crc, size) = (self.crc.sum(), self.crc.amount());
        self.inner.write_all(&crc.to_le_bytes())?;
        self.inner.write_all(&size.to_le_bytes())?;
        let ParallelGzip { inner, jobs, workers, .. } = self;
        // Closing the job channel ends the workers.
        drop(jobs);
        for w in workers {
            let _ = w.join();
        }
        Ok(inner)
    }
}

impl<W: Write> Write for ParallelGzip<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = BLOCK - self.block.len();
        let n = room.min(buf.len());
        self.block.extend_from_slice(&buf[..n]);
        if self.block.len() == BLOCK {
            self.submit(false)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One block as raw deflate with a fresh compressor, primed with `dictionary`, ended with a sync
/// flush (a final block when `last`), or stored when it would not compress; and the CRC-32 of its
/// input.
fn compress_block(input: &[u8], dictionary: &[u8], last: bool) -> Compressed {
    let mut crc = Crc::new();
    crc.update(input);
    if incompressible(input) {
        return Ok((stored(input, last), crc));
    }
    Ok((deflate(input, dictionary, last)?, crc))
}

/// Bytes sampled from a block to judge whether it compresses.
const SAMPLE: usize = 4096;

/// Whether samples from the start, middle and end of `input` (each deflated on its own) come out
/// at no less than 98% of their size. The first sample alone settles most blocks: text and code
/// deflate well below 90%.
fn incompressible(input: &[u8]) -> bool {
    if input.len() < 4 * SAMPLE {
        return false;
    }
    let starts = [0, input.len() / 2 - SAMPLE / 2, input.len() - SAMPLE];
    let (mut taken, mut made) = (0, 0);
    for (i, start) in starts.into_iter().enumerate() {
        let sample = &input[start..start + SAMPLE];
        let out = match deflate(sample, &[], true) {
            Ok(out) => out.len(),
            Err(_) => return false,
        };
        taken += SAMPLE;
        made += out;
        if i == 0 && out * 10 < SAMPLE * 9 {
            return false;
        }
    }
    made * 100 >= taken * 98
}

/// `input` as stored deflate blocks (each at most 65,535 bytes), the last one final when `last`.
/// The stream is byte-aligned here (the block before ended with a sync flush or was stored), so
/// each block's three header bits take one whole byte.
fn stored(input: &[u8], last: bool) -> Vec<u8> {
    let chunks = input.chunks(u16::MAX as usize);
    let count = chunks.len();
    let mut out = Vec::with_capacity(input.len() + 5 * count);
    for (i, chunk) in chunks.enumerate() {
        let len = chunk.len() as u16;
        out.push(u8::from(last && i + 1 == count));
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

/// `input` as raw deflate, primed with `dictionary`, ended with a sync flush (or finished).
fn deflate(input: &[u8], dictionary: &[u8], last: bool) -> io::Result<Vec<u8>> {
    let mut c = Compress::new(flate2::Compression::fast(), false);
    if !dictionary.is_empty() {
        c.set_dictionary(dictionary).map_err(io::Error::other)?;
    }
    let mut out = Vec::with_capacity(input.len() / 2 + 64 * 1024);
    let flush = if last { FlushCompress::Finish } else { FlushCompress::Sync };
    loop {
        if out.capacity() - out.len() < 64 * 1024 {
            out.reserve(64 * 1024);
        }
        let consumed = c.total_in() as usize;
        let status = c.compress_vec(&input[consumed..], &mut out, flush).map_err(io::Error::other)?;
        if status == Status::StreamEnd {
            break;
        }
        // A sync flush is complete once all input is in and the compressor left output room unused.
        if !last && c.total_in() as usize == input.len() && out.capacity() > out.len() {
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// 1.5 MiB: compressible text, then bytes that do not compress.
    fn sample() -> Vec<u8> {
        let mut data: Vec<u8> = (0..60_000).flat_map(|i| format!("line {i} of the sample\n").into_bytes()).collect();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        data.extend((0..400_000).map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        }));
        data
    }

    fn gzip_with(threads: usize, data: &[u8], chunk: usize) -> Vec<u8> {
        let mut g = ParallelGzip::new(Vec::new(), threads);
        for piece in data.chunks(chunk) {
            g.write_all(piece).unwrap();
        }
        g.finish().unwrap()
    }

    #[test]
    fn bytes_do_not_depend_on_threads_or_write_sizes() {
        let data = sample();
        let one = gzip_with(1, &data, 1 << 20);
        assert_eq!(gzip_with(2, &data, 7777), one);
        assert_eq!(gzip_with(8, &data, 1 << 16), one);
        assert_eq!(gzip_with(3, &data[..300_000], 1), gzip_with(1, &data[..300_000], 300_000));
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&one[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
        assert!(one.len() < data.len(), "it compresses");
    }

    #[test]
    fn gzip_dash_d_reads_it() {
        let data = sample();
        let gz = gzip_with(2, &data, 1 << 20);
        let mut child = std::process::Command::new("gzip")
            .arg("-dc")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let feeder = std::thread::spawn(move || stdin.write_all(&gz).unwrap());
        let out = child.wait_with_output().unwrap();
        feeder.join().unwrap();
        assert!(out.status.success());
        assert_eq!(out.stdout, data);
    }

    #[test]
    fn blocks_that_do_not_compress_are_stored_and_the_rest_deflated() {
        let data = sample();
        let random = &data[data.len() - 3 * BLOCK / 2..];
        let text = &data[..BLOCK];
        assert!(incompressible(&random[..BLOCK]));
        assert!(!incompressible(text));
        let gz = gzip_with(2, random, 1 << 20);
        // Header and trailer, then one 5-byte header per stored block of 65,535 bytes at most.
        let stored_blocks = 3 * BLOCK / 2 / 65_535 + 2;
        assert!(gz.len() <= random.len() + 18 + 5 * stored_blocks, "{} for {}", gz.len(), random.len());
        let mut mixed = random.to_vec();
        mixed.extend_from_slice(text);
        mixed.extend_from_slice(&random[..BLOCK]);
        for input in [random, &mixed[..]] {
            let gz = gzip_with(3, input, 5000);
            assert_eq!(gzip_with(1, input, 1 << 20), gz);
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut back).unwrap();
            assert_eq!(back, input);
        }
        assert!(gzip_with(2, &mixed, 1 << 20).len() < mixed.len() - BLOCK / 2, "the text block still deflates");
    }

    #[test]
    fn empty_and_exact_block_inputs_are_valid() {
        for len in [0, 1, BLOCK, BLOCK + 1, 2 * BLOCK] {
            let data = vec![b'k'; len];
            let gz = gzip_with(2, &data, 4096);
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut back).unwrap();
            assert_eq!(back.len(), len);
            assert_eq!(gzip_with(1, &data, 4096), gz);
        }
    }

    #[test]
    fn zstd_bytes_do_not_depend_on_workers() {
        let data = sample();
        let z = |threads| {
            let mut c = Compressor::new(Compression::Zstd, Vec::new(), threads).unwrap();
            c.write_all(&data).unwrap();
            c.finish().unwrap()
        };
        let one = z(1);
        assert_eq!(z(2), one);
        assert_eq!(z(4), one);
        assert_eq!(zstd::decode_all(&one[..]).unwrap(), data);
    }
}
