//! SPDY/3.1 framing, as Go's spdystream (kubectl's side of a port-forward)
//! speaks it: control and data frames, and name/value header blocks
//! compressed with one zlib stream per direction, primed with the SPDY/3
//! dictionary.

use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use tokio::io::{AsyncRead, AsyncReadExt};

const VERSION: u16 = 3;
const CONTROL_BIT: u32 = 0x8000_0000;
/// The flag that ends a side of a stream, on SYN_STREAM, SYN_REPLY, HEADERS and DATA.
const FLAG_FIN: u8 = 0x01;
/// Frames larger than this are a peer misbehaving (the field allows 16 MiB).
const MAX_FRAME: usize = 1 << 24;

/// One frame, its header block already decompressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    SynStream {
        stream_id: u32,
        fin: bool,
        headers: Vec<(String, String)>,
    },
    SynReply {
        stream_id: u32,
        fin: bool,
        headers: Vec<(String, String)>,
    },
    RstStream {
        stream_id: u32,
        status: u32,
    },
    Settings(Vec<(u32, u32)>),
    Ping(u32),
    GoAway {
        last_stream_id: u32,
        status: u32,
    },
    Headers {
        stream_id: u32,
        fin: bool,
        headers: Vec<(String, String)>,
    },
    WindowUpdate {
        stream_id: u32,
        delta: u32,
    },
    Data {
        stream_id: u32,
        fin: bool,
        data: Bytes,
    },
}

/// RST_STREAM status codes (SPDY/3.1 section 2.6.3).
pub const PROTOCOL_ERROR: u32 = 1;
pub const REFUSED_STREAM: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum SpdyError {
    #[error("reading the SPDY connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("SPDY protocol error: {0}")]
    Protocol(String),
}

fn protocol(message: impl Into<String>) -> SpdyError {
    SpdyError::Protocol(message.into())
}

/// The SPDY/3 header dictionary (draft-mbelshe-httpbis-spdy-00, 2.6.10.1):
/// length-prefixed header names and values, then common status lines,
/// dates and media types.
fn dictionary() -> &'static [u8] {
    static DICT: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
        const WORDS: &[&str] = &[
            "options",
            "head",
            "post",
            "put",
            "delete",
            "trace",
            "accept",
            "accept-charset",
            "accept-encoding",
            "accept-language",
            "accept-ranges",
            "age",
            "allow",
            "authorization",
            "cache-control",
            "connection",
            "content-base",
            "content-encoding",
            "content-language",
            "content-length",
            "content-location",
            "content-md5",
            "content-range",
            "content-type",
            "date",
            "etag",
            "expect",
            "expires",
            "from",
            "host",
            "if-match",
            "if-modified-since",
            "if-none-match",
            "if-range",
            "if-unmodified-since",
            "last-modified",
            "location",
            "max-forwards",
            "pragma",
            "proxy-authenticate",
            "proxy-authorization",
            "range",
            "referer",
            "retry-after",
            "server",
            "te",
            "trailer",
            "transfer-encoding",
            "upgrade",
            "user-agent",
            "vary",
            "via",
            "warning",
            "www-authenticate",
            "method",
            "get",
            "status",
            "200 OK",
            "version",
            "HTTP/1.1",
            "url",
            "public",
            "set-cookie",
            "keep-alive",
            "origin",
        ];
        const TAIL: &str = concat!(
            "100101201202205206300302303304305306307",
            "402405406407408409410411412413414415416417",
            "502504505",
            "203 Non-Authoritative Information",
            "204 No Content",
            "301 Moved Permanently",
            "400 Bad Request",
            "401 Unauthorized",
            "403 Forbidden",
            "404 Not Found",
            "500 Internal Server Error",
            "501 Not Implemented",
            "503 Service Unavailable",
            "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec",
            " 00:00:00",
            " Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT",
            "chunked,text/html,image/png,image/jpg,image/gif,",
            "application/xml,application/xhtml+xml,text/plain,text/javascript,",
            "publicprivatemax-age=gzip,deflate,sdch",
            "charset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
        );
        let mut dict = Vec::new();
        for word in WORDS {
            dict.extend_from_slice(&(word.len() as u32).to_be_bytes());
            dict.extend_from_slice(word.as_bytes());
        }
        dict.extend_from_slice(TAIL.as_bytes());
        dict
    });
    &DICT
}

/// Decompresses the header blocks of one direction of a connection.
pub struct HeaderReader {
    z: Decompress,
}

impl Default for HeaderReader {
    fn default() -> Self {
        Self {
            z: Decompress::new(true),
        }
    }
}

impl HeaderReader {
    fn inflate(&mut self, input: &[u8]) -> Result<Vec<u8>, SpdyError> {
        let mut out = Vec::with_capacity(input.len() * 4 + 256);
        let mut pos = 0;
        loop {
            if out.capacity() - out.len() < 256 {
                out.reserve(out.capacity().max(256));
            }
            let (before_in, before_out) = (self.z.total_in(), self.z.total_out());
            let needs_dict =
                match self
                    .z
                    .decompress_vec(&input[pos..], &mut out, FlushDecompress::Sync)
                {
                    Ok(_) => false,
                    Err(e) if e.needs_dictionary().is_some() => true,
                    Err(e) => return Err(protocol(format!("corrupt header block: {e}"))),
                };
            if needs_dict {
                self.z
                    .set_dictionary(dictionary())
                    .map_err(|e| protocol(format!("header block wants another dictionary: {e}")))?;
            }
            let consumed = (self.z.total_in() - before_in) as usize;
            let produced = self.z.total_out() - before_out;
            pos += consumed;
            let room_left = out.len() < out.capacity();
            if pos >= input.len() && room_left {
                return Ok(out);
            }
            if consumed == 0 && produced == 0 && !needs_dict && room_left {
                return Err(protocol("truncated header block"));
            }
        }
    }

    fn headers(&mut self, block: &[u8]) -> Result<Vec<(String, String)>, SpdyError> {
        let plain = self.inflate(block)?;
        let mut cursor = Cursor(&plain);
        let count = cursor.length()?;
        let mut headers = Vec::with_capacity(count.min(64));
        for _ in 0..count {
            let name = cursor.string()?;
            let value = cursor.string()?;
            headers.push((name.to_ascii_lowercase(), value));
        }
        Ok(headers)
    }
}

/// Reads the length-prefixed strings of a decompressed header block.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], SpdyError> {
        if self.0.len() < n {
            return Err(protocol("header block shorter than its lengths say"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn length(&mut self) -> Result<usize, SpdyError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    fn string(&mut self) -> Result<String, SpdyError> {
        let len = self.length()?;
        String::from_utf8(self.take(len)?.to_vec()).map_err(|_| protocol("header is not UTF-8"))
    }
}

/// Compresses the header blocks this side sends.
pub struct HeaderWriter {
    z: Compress,
}

impl Default for HeaderWriter {
    fn default() -> Self {
        let mut z = Compress::new(Compression::default(), true);
        z.set_dictionary(dictionary())
            .expect("a fresh zlib stream takes a dictionary");
        Self { z }
    }
}

impl HeaderWriter {
    fn block(&mut self, headers: &[(String, String)]) -> Vec<u8> {
        let mut plain = Vec::new();
        plain.extend_from_slice(&(headers.len() as u32).to_be_bytes());
        for (name, value) in headers {
            for s in [name.to_ascii_lowercase().as_str(), value.as_str()] {
                plain.extend_from_slice(&(s.len() as u32).to_be_bytes());
                plain.extend_from_slice(s.as_bytes());
            }
        }
        let mut out = Vec::with_capacity(plain.len() + 64);
        let mut pos = 0;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(64));
            }
            let before = self.z.total_in();
            self.z
                .compress_vec(&plain[pos..], &mut out, FlushCompress::Sync)
                .expect("deflating into memory cannot fail");
            pos += (self.z.total_in() - before) as usize;
            // A sync flush is complete once it leaves room in the output.
            if pos >= plain.len() && out.len() < out.capacity() {
                return out;
            }
        }
    }
}

fn control(kind: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = words([
        CONTROL_BIT | (u32::from(VERSION) << 16) | u32::from(kind),
        (u32::from(flags) << 24) | payload.len() as u32,
    ]);
    out.extend_from_slice(payload);
    out
}

fn fin_flag(fin: bool) -> u8 {
    if fin { FLAG_FIN } else { 0 }
}

/// Big-endian 32-bit words, the unit of every control frame's fields.
fn words(ws: impl IntoIterator<Item = u32>) -> Vec<u8> {
    ws.into_iter().flat_map(u32::to_be_bytes).collect()
}

impl Frame {
    /// The frame's bytes on the wire; header blocks go through `hw`, in order.
    pub fn encode(&self, hw: &mut HeaderWriter) -> Vec<u8> {
        let (kind, flags, payload) = match self {
            Frame::SynStream {
                stream_id,
                fin,
                headers,
            } => {
                // Associated stream 0, priority 0, slot 0.
                let fields = [words([*stream_id, 0]), vec![0, 0], hw.block(headers)];
                (1, fin_flag(*fin), fields.concat())
            }
            Frame::SynReply {
                stream_id,
                fin,
                headers,
            }
            | Frame::Headers {
                stream_id,
                fin,
                headers,
            } => {
                let kind = if matches!(self, Frame::SynReply { .. }) {
                    2
                } else {
                    8
                };
                let fields = [words([*stream_id]), hw.block(headers)];
                (kind, fin_flag(*fin), fields.concat())
            }
            Frame::RstStream { stream_id, status } => (3, 0, words([*stream_id, *status])),
            Frame::Settings(entries) => {
                let fields = entries.iter().flat_map(|(id, v)| [id & 0x00ff_ffff, *v]);
                (
                    4,
                    0,
                    words(std::iter::once(entries.len() as u32).chain(fields)),
                )
            }
            Frame::Ping(id) => (6, 0, words([*id])),
            Frame::GoAway {
                last_stream_id,
                status,
            } => (7, 0, words([*last_stream_id, *status])),
            Frame::WindowUpdate { stream_id, delta } => (9, 0, words([*stream_id, *delta])),
            Frame::Data {
                stream_id,
                fin,
                data,
            } => {
                let mut out = words([
                    stream_id & !CONTROL_BIT,
                    (u32::from(fin_flag(*fin)) << 24) | data.len() as u32,
                ]);
                out.extend_from_slice(data);
                return out;
            }
        };
        control(kind, flags, &payload)
    }
}

fn word(p: &[u8], at: usize) -> Result<u32, SpdyError> {
    p.get(at..at + 4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| protocol("control frame shorter than its type requires"))
}

/// Reads the next frame; `None` when the peer closed the connection between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    hr: &mut HeaderReader,
) -> Result<Option<Frame>, SpdyError> {
    let mut head = [0u8; 8];
    match r.read_exact(&mut head[..1]).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    r.read_exact(&mut head[1..]).await?;
    let first = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    let flags = head[4];
    let len = (u32::from_be_bytes([0, head[5], head[6], head[7]])) as usize;
    if len > MAX_FRAME {
        return Err(protocol(format!("frame of {len} bytes")));
    }
    let mut p = vec![0u8; len];
    r.read_exact(&mut p).await?;
    let fin = flags & FLAG_FIN != 0;
    if first & CONTROL_BIT == 0 {
        return Ok(Some(Frame::Data {
            stream_id: first,
            fin,
            data: Bytes::from(p),
        }));
    }
    let version = ((first >> 16) & 0x7fff) as u16;
    if version != VERSION {
        return Err(protocol(format!(
            "SPDY version {version}; this server speaks SPDY/3.1"
        )));
    }
    let id = |at| word(&p, at).map(|w| w & !CONTROL_BIT);
    let frame = match first & 0xffff {
        1 => Frame::SynStream {
            stream_id: id(0)?,
            fin,
            headers: hr.headers(p.get(10..).ok_or_else(|| protocol("short SYN_STREAM"))?)?,
        },
        2 => Frame::SynReply {
            stream_id: id(0)?,
            fin,
            headers: hr.headers(&p[4.min(p.len())..])?,
        },
        3 => Frame::RstStream {
            stream_id: id(0)?,
            status: word(&p, 4)?,
        },
        4 => {
            let n = word(&p, 0)? as usize;
            let entries = (0..n)
                .map(|i| Ok((word(&p, 4 + i * 8)? & 0x00ff_ffff, word(&p, 8 + i * 8)?)))
                .collect::<Result<_, SpdyError>>()?;
            Frame::Settings(entries)
        }
        6 => Frame::Ping(word(&p, 0)?),
        7 => Frame::GoAway {
            last_stream_id: id(0)?,
            status: word(&p, 4)?,
        },
        8 => Frame::Headers {
            stream_id: id(0)?,
            fin,
            headers: hr.headers(&p[4.min(p.len())..])?,
        },
        9 => Frame::WindowUpdate {
            stream_id: id(0)?,
            delta: word(&p, 4)? & !CONTROL_BIT,
        },
        // Unknown control frames must be ignored (section 2.2.1); CREDENTIAL (10) too.
        _ => return Box::pin(read_frame(r, hr)).await,
    };
    Ok(Some(frame))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dictionary_has_the_specified_size() {
        assert_eq!(dictionary().len(), 1423);
        assert!(dictionary().starts_with(b"\0\0\0\x07options\0\0\0\x04head"));
        assert!(dictionary().ends_with(b",utf-,*,enq=0."));
    }

    #[tokio::test]
    async fn frames_round_trip_through_one_compression_context() {
        let frames = vec![
            Frame::SynStream {
                stream_id: 1,
                fin: false,
                headers: vec![
                    ("streamtype".into(), "error".into()),
                    ("port".into(), "8080".into()),
                    ("requestid".into(), "0".into()),
                ],
            },
            Frame::SynReply {
                stream_id: 1,
                fin: false,
                headers: Vec::new(),
            },
            Frame::SynStream {
                stream_id: 3,
                fin: false,
                headers: vec![("streamtype".into(), "data".into())],
            },
            Frame::Data {
                stream_id: 3,
                fin: true,
                data: Bytes::from_static(b"GET / HTTP/1.1\r\n\r\n"),
            },
            Frame::Ping(7),
            Frame::Settings(vec![(4, 100), (7, 65536)]),
            Frame::RstStream {
                stream_id: 3,
                status: REFUSED_STREAM,
            },
            Frame::WindowUpdate {
                stream_id: 3,
                delta: 1024,
            },
            Frame::GoAway {
                last_stream_id: 3,
                status: 0,
            },
        ];
        let mut hw = HeaderWriter::default();
        let wire: Vec<u8> = frames.iter().flat_map(|f| f.encode(&mut hw)).collect();
        let mut hr = HeaderReader::default();
        let mut r = &wire[..];
        let mut read = Vec::new();
        while let Some(f) = read_frame(&mut r, &mut hr).await.unwrap() {
            read.push(f);
        }
        assert_eq!(read, frames);
    }

    #[tokio::test]
    async fn other_versions_are_refused() {
        let mut wire = control(6, 0, &1u32.to_be_bytes());
        wire[1] = 2;
        let err = read_frame(&mut &wire[..], &mut HeaderReader::default())
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "SPDY protocol error: SPDY version 2; this server speaks SPDY/3.1"
        );
    }
}
