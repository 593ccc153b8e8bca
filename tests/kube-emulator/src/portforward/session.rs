//! The portforward.k8s.io protocol over SPDY/3.1, as the kubelet serves it:
//! the client opens an `error` and a `data` stream per connection, both
//! carrying `port` and `requestID`; the server replies to each, connects to
//! the port once it has the pair, and copies bytes both ways with
//! half-close. A failure to connect is written to the error stream.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinSet};

use super::Dial;
use super::spdy::{self, Frame, HeaderReader, HeaderWriter};

/// Chunks of client data queued for one connection before the reader waits.
const QUEUE: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Error,
    Data,
}

/// What the client's stream headers say.
struct StreamHeaders {
    kind: Kind,
    port: u16,
    request: String,
}

fn parse_headers(stream_id: u32, headers: &[(String, String)]) -> Result<StreamHeaders, String> {
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.split('\0').next().unwrap_or_default())
    };
    let kind = match get("streamtype") {
        Some("error") => Kind::Error,
        Some("data") => Kind::Data,
        other => return Err(format!("invalid stream type {other:?}")),
    };
    let port = get("port").ok_or("missing port header")?;
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("invalid port {port:?}"))?;
    // Clients older than requestID pair a data stream with the error stream opened just before it.
    let request = get("requestid").map(String::from).unwrap_or_else(|| {
        match kind {
            Kind::Error => stream_id,
            Kind::Data => stream_id.saturating_sub(2),
        }
        .to_string()
    });
    Ok(StreamHeaders {
        kind,
        port,
        request,
    })
}

/// A connection's streams until both have arrived.
#[derive(Default)]
struct Pair {
    error: Option<u32>,
    data: Option<(u32, mpsc::Receiver<Bytes>)>,
    port: u16,
}

/// Serves one SPDY connection until the client closes it.
pub(super) async fn serve<S>(io: S, target: Arc<impl Dial>)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(io);
    let (out, mut outgoing) = mpsc::channel::<Frame>(QUEUE);
    let writer = async move {
        let mut hw = HeaderWriter::default();
        while let Some(frame) = outgoing.recv().await {
            if wr.write_all(&frame.encode(&mut hw)).await.is_err() {
                break;
            }
            if outgoing.is_empty() && wr.flush().await.is_err() {
                break;
            }
        }
    };
    let reader = read_loop(&mut rd, out, target);
    // The session ends when the client's side does; the writer drains what is queued.
    tokio::pin!(writer);
    tokio::select! {
        () = reader => {}
        () = &mut writer => {}
    }
}

async fn read_loop<R: AsyncRead + Unpin>(
    rd: &mut R,
    out: mpsc::Sender<Frame>,
    target: Arc<impl Dial>,
) {
    let mut hr = HeaderReader::default();
    let mut to_pod: HashMap<u32, mpsc::Sender<Bytes>> = HashMap::new();
    let mut pairs: HashMap<String, Pair> = HashMap::new();
    let mut forwards = JoinSet::new();
    let mut by_stream: HashMap<u32, AbortHandle> = HashMap::new();
    let mut going_away = false;
    let mut last_stream = 0;
    loop {
        let frame = match spdy::read_frame(rd, &mut hr).await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                tracing::debug!("port-forward: {e}");
                let _ = out
                    .send(Frame::GoAway {
                        last_stream_id: last_stream,
                        status: spdy::PROTOCOL_ERROR,
                    })
                    .await;
                break;
            }
        };
        match frame {
            Frame::SynStream {
                stream_id, headers, ..
            } => {
                let parsed = if going_away {
                    Err(spdy::REFUSED_STREAM)
                } else {
                    last_stream = stream_id;
                    parse_headers(stream_id, &headers).map_err(|e| {
                        tracing::debug!("port-forward stream {stream_id}: {e}");
                        spdy::PROTOCOL_ERROR
                    })
                };
                let h = match parsed {
                    Ok(h) => h,
                    Err(status) => {
                        let _ = out.send(Frame::RstStream { stream_id, status }).await;
                        continue;
                    }
                };
                let _ = out
                    .send(Frame::SynReply {
                        stream_id,
                        fin: false,
                        headers: Vec::new(),
                    })
                    .await;
                let pair = pairs.entry(h.request.clone()).or_default();
                pair.port = h.port;
                match h.kind {
                    Kind::Error => pair.error = Some(stream_id),
                    Kind::Data => {
                        let (tx, rx) = mpsc::channel(QUEUE);
                        to_pod.insert(stream_id, tx);
                        pair.data = Some((stream_id, rx));
                    }
                }
                if pair.error.is_some() && pair.data.is_some() {
                    let Pair { error, data, port } = pairs
                        .remove(&h.request)
                        .expect("the pair was just completed");
                    let (error, (data, from_client)) =
                        (error.expect("checked above"), data.expect("checked above"));
                    let handle = forwards.spawn(forward(
                        target.clone(),
                        port,
                        Streams { error, data },
                        from_client,
                        out.clone(),
                    ));
                    by_stream.insert(error, handle.clone());
                    by_stream.insert(data, handle);
                }
            }
            Frame::Data {
                stream_id,
                fin,
                data,
            } => {
                if let Some(tx) = to_pod.get(&stream_id)
                    && !data.is_empty()
                    && tx.send(data).await.is_err()
                {
                    to_pod.remove(&stream_id);
                }
                if fin {
                    // Dropping the sender half-closes the pod connection.
                    to_pod.remove(&stream_id);
                }
            }
            Frame::RstStream { stream_id, .. } => {
                to_pod.remove(&stream_id);
                if let Some(h) = by_stream.remove(&stream_id) {
                    h.abort();
                }
            }
            Frame::Ping(id) => {
                let _ = out.send(Frame::Ping(id)).await;
            }
            Frame::GoAway { .. } => going_away = true,
            // Windows go unenforced: kubectl's spdystream takes data past the initial
            // 64 KiB (the e2e tests move 300 kB per connection).
            Frame::Settings(_)
            | Frame::WindowUpdate { .. }
            | Frame::Headers { .. }
            | Frame::SynReply { .. } => {}
        }
        while forwards.try_join_next().is_some() {}
        // A finished forward has dropped its receiver; forget its streams.
        by_stream.retain(|_, h| !h.is_finished());
        to_pod.retain(|_, tx| !tx.is_closed());
    }
    // The client is gone: its forwards' pod connections close with it.
    forwards.abort_all();
}

struct Streams {
    error: u32,
    data: u32,
}

fn data(stream_id: u32, fin: bool, data: Bytes) -> Frame {
    Frame::Data {
        stream_id,
        fin,
        data,
    }
}

/// One forwarded connection: copies both ways, then ends both streams.
async fn forward(
    target: Arc<impl Dial>,
    port: u16,
    streams: Streams,
    from_client: mpsc::Receiver<Bytes>,
    out: mpsc::Sender<Frame>,
) {
    let tcp = match target.dial(port).await {
        Ok(tcp) => tcp,
        Err(message) => {
            let _ = out.send(data(streams.error, false, message.into())).await;
            let _ = out.send(data(streams.error, true, Bytes::new())).await;
            let _ = out.send(data(streams.data, true, Bytes::new())).await;
            return;
        }
    };
    let failure = super::copy(port, tcp, from_client, &out, |chunk| {
        data(streams.data, false, chunk)
    })
    .await
    .err();
    let _ = out.send(data(streams.data, true, Bytes::new())).await;
    if let Some(message) = failure {
        let _ = out.send(data(streams.error, false, message.into())).await;
    }
    // The client waits for the error stream to end before it closes its side.
    let _ = out.send(data(streams.error, true, Bytes::new())).await;
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, DuplexStream};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    /// Dials the host's loopback: the "pod" is a listener of the test's.
    struct Loopback;

    impl Dial for Loopback {
        async fn dial(&self, port: u16) -> Result<TcpStream, String> {
            TcpStream::connect(("127.0.0.1", port))
                .await
                .map_err(|e| format!("dial tcp 127.0.0.1:{port}: {e}"))
        }
    }

    /// The client's end of a session.
    struct Client {
        io: DuplexStream,
        hw: HeaderWriter,
        hr: HeaderReader,
    }

    impl Client {
        fn start() -> Client {
            let (ours, theirs) = tokio::io::duplex(1 << 16);
            tokio::spawn(serve(theirs, Arc::new(Loopback)));
            Client {
                io: ours,
                hw: HeaderWriter::default(),
                hr: HeaderReader::default(),
            }
        }

        async fn send(&mut self, frame: Frame) {
            self.io
                .write_all(&frame.encode(&mut self.hw))
                .await
                .unwrap();
        }

        async fn open(&mut self, stream_id: u32, kind: &str, port: u16) {
            let headers = [
                ("streamType", kind),
                ("port", &port.to_string()),
                ("requestID", "0"),
            ]
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .to_vec();
            self.send(Frame::SynStream {
                stream_id,
                fin: false,
                headers,
            })
            .await;
        }

        async fn next(&mut self) -> Frame {
            let read = spdy::read_frame(&mut self.io, &mut self.hr);
            tokio::time::timeout(std::time::Duration::from_secs(10), read)
                .await
                .expect("the server answers within 10s")
                .unwrap()
                .expect("a frame")
        }

        /// Everything the server sends on `stream_id` until it ends that side, skipping other frames.
        async fn read_stream(&mut self, stream_id: u32) -> Vec<u8> {
            let mut got = Vec::new();
            loop {
                if let Frame::Data {
                    stream_id: id,
                    fin,
                    data,
                } = self.next().await
                    && id == stream_id
                {
                    got.extend_from_slice(&data);
                    if fin {
                        return got;
                    }
                }
            }
        }
    }

    fn reply(stream_id: u32) -> Frame {
        Frame::SynReply {
            stream_id,
            fin: false,
            headers: Vec::new(),
        }
    }

    #[tokio::test]
    async fn a_pair_of_streams_forwards_with_half_close() {
        let pod = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = pod.local_addr().unwrap().port();
        // The pod answers only once the client has finished sending: a half-close test.
        tokio::spawn(async move {
            let (mut conn, _) = pod.accept().await.unwrap();
            let mut request = Vec::new();
            conn.read_to_end(&mut request).await.unwrap();
            conn.write_all(format!("got {} bytes", request.len()).as_bytes())
                .await
                .unwrap();
        });
        let mut c = Client::start();
        c.open(1, "error", port).await;
        assert_eq!(c.next().await, reply(1));
        c.open(3, "data", port).await;
        assert_eq!(c.next().await, reply(3));
        c.send(Frame::Ping(5)).await;
        assert_eq!(c.next().await, Frame::Ping(5));
        for chunk in [&b"hello "[..], b"pod"] {
            c.send(data(3, false, Bytes::from_static(chunk))).await;
        }
        c.send(data(3, true, Bytes::new())).await;
        assert_eq!(c.read_stream(3).await, b"got 9 bytes");
        assert_eq!(c.read_stream(1).await, b"");
    }

    #[tokio::test]
    async fn a_closed_port_is_reported_on_the_error_stream() {
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let mut c = Client::start();
        c.open(1, "error", port).await;
        c.open(3, "data", port).await;
        let message = String::from_utf8(c.read_stream(1).await).unwrap();
        assert!(
            message.starts_with(&format!("dial tcp 127.0.0.1:{port}: Connection refused")),
            "{message}"
        );
    }

    #[tokio::test]
    async fn streams_without_a_type_or_port_are_reset() {
        let mut c = Client::start();
        c.open(1, "stdin", 80).await;
        assert_eq!(
            c.next().await,
            Frame::RstStream {
                stream_id: 1,
                status: spdy::PROTOCOL_ERROR
            }
        );
        c.open(3, "data", 0).await;
        assert_eq!(
            c.next().await,
            Frame::RstStream {
                stream_id: 3,
                status: spdy::PROTOCOL_ERROR
            }
        );
    }
}
