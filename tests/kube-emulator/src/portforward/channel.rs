//! The WebSocket channel protocol (`v4.channel.k8s.io`) for port-forward,
//! which kube-rs speaks: every binary message starts with a channel byte;
//! the i-th requested port has data channel 2i and error channel 2i+1, and
//! the server opens each channel with the port as two little-endian bytes.
//! The protocol has no half-close: the socket closes once every port's pod
//! side has ended.

use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket};
use bytes::{BufMut, Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::Dial;

fn frame(channel: u8, payload: &[u8]) -> Message {
    let mut b = BytesMut::with_capacity(payload.len() + 1);
    b.put_u8(channel);
    b.put_slice(payload);
    Message::Binary(b.freeze())
}

/// Serves one WebSocket until the client closes it or every port is done.
pub(super) async fn serve(socket: WebSocket, target: Arc<impl Dial>, ports: Vec<u16>) {
    let (mut sink, mut incoming) = socket.split();
    let (out, mut outgoing) = mpsc::channel::<Message>(64);
    let mut to_pod = Vec::with_capacity(ports.len());
    let mut forwards = JoinSet::new();
    for (i, port) in ports.iter().enumerate() {
        let data = (2 * i) as u8;
        for channel in [data, data + 1] {
            let _ = out.send(frame(channel, &port.to_le_bytes())).await;
        }
        let (tx, rx) = mpsc::channel::<Bytes>(64);
        to_pod.push(Some(tx));
        forwards.spawn(forward(target.clone(), *port, data, rx, out.clone()));
    }
    drop(out);
    let writer = async move {
        while let Some(message) = outgoing.recv().await {
            if sink.send(message).await.is_err() {
                return;
            }
        }
        // Every port is done (all senders dropped): close as the kubelet does.
        let _ = sink.send(Message::Close(None)).await;
    };
    let reader = async move {
        while let Some(Ok(message)) = incoming.next().await {
            match message {
                Message::Binary(mut bytes) if bytes.len() > 1 => {
                    let channel = bytes.split_to(1)[0] as usize;
                    // Error channels are the server's to write; data for them is ignored.
                    if channel % 2 == 1 {
                        continue;
                    }
                    if let Some(slot) = to_pod.get_mut(channel / 2)
                        && let Some(tx) = slot
                        && tx.send(bytes).await.is_err()
                    {
                        *slot = None;
                    }
                }
                Message::Close(_) => return,
                _ => {}
            }
        }
    };
    tokio::select! {
        () = writer => {}
        () = reader => {}
    }
    forwards.abort_all();
}

async fn forward(
    target: Arc<impl Dial>,
    port: u16,
    data: u8,
    from_client: mpsc::Receiver<Bytes>,
    out: mpsc::Sender<Message>,
) {
    let tcp = match target.dial(port).await {
        Ok(tcp) => tcp,
        Err(message) => {
            let _ = out.send(frame(data + 1, message.as_bytes())).await;
            return;
        }
    };
    if let Err(message) =
        super::copy(port, tcp, from_client, &out, |chunk| frame(data, &chunk)).await
    {
        let _ = out.send(frame(data + 1, message.as_bytes())).await;
    }
}
