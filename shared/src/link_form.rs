//! The form in which a membership message travels on an authenticated link.
//!
//! Every member sends a heartbeat and its answer to each of its monitors every second,
//! and a gossip status to one peer: those are nearly all of an idle cluster's traffic.
//! In full they spell out the sender's address (and the status its receiver's), which
//! the link already names: the transport authenticated the peer's address in its
//! handshake and refuses a message that claims another. So these three travel as
//! incarnation numbers and digests in fixed eight-byte fields (a random `u64` takes ten
//! as a varint), and the receiver puts the addresses back from the link's two ends.
//! Every other message travels in full. With the simulator's addresses a heartbeat went
//! from 24 bytes to 11 (the protocol version included), and a status from 63 to 34.

use crate::address::{Address, UniqueAddress};
use crate::wire::{self, Message, WireError};
use serde::{Deserialize, Serialize};

/// Encodes a membership message as one frame payload, in its link form.
pub fn encode(message: &Message) -> Result<Vec<u8>, WireError> {
    wire::encode_versioned(&Outgoing::of(message))
}

/// Decodes and validates one frame payload that came over the link `ends`.
pub fn decode(bytes: &[u8], ends: LinkEnds<'_>) -> Result<Message, WireError> {
    let incoming: Incoming = wire::decode_versioned(bytes)?;
    let message = incoming.into_message(ends);
    wire::validate(&message)?;
    Ok(message)
}

/// The two ends of the link a message travels on: the authenticated peer that sent it,
/// and the address this node advertises (where the sender reached it).
#[derive(Clone, Copy, Debug)]
pub struct LinkEnds<'a> {
    /// The peer the link authenticated.
    pub sender: &'a Address,
    /// This node's own advertised address.
    pub receiver: &'a Address,
}

/// A `u64` in eight bytes, whatever its value.
type Fixed = [u8; 8];

/// What is encoded (borrowing the message).
#[derive(Serialize)]
pub(crate) enum Outgoing<'a> {
    Full(&'a Message),
    Heartbeat {
        from: Fixed,
        seq: u64,
    },
    HeartbeatRsp {
        from: Fixed,
        seq: u64,
    },
    GossipStatus {
        from: Fixed,
        to: Fixed,
        version_digest: Fixed,
        seen_digest: Fixed,
    },
}

/// What is decoded: the same variants, in the same order, owned.
#[derive(Deserialize)]
pub(crate) enum Incoming {
    Full(Message),
    Heartbeat {
        from: Fixed,
        seq: u64,
    },
    HeartbeatRsp {
        from: Fixed,
        seq: u64,
    },
    GossipStatus {
        from: Fixed,
        to: Fixed,
        version_digest: Fixed,
        seen_digest: Fixed,
    },
}

impl<'a> Outgoing<'a> {
    /// The link form of `message`.
    pub(crate) fn of(message: &'a Message) -> Outgoing<'a> {
        let fixed = u64::to_le_bytes;
        match message {
            Message::Heartbeat { from, seq } => Outgoing::Heartbeat {
                from: fixed(from.uid),
                seq: *seq,
            },
            Message::HeartbeatRsp { from, seq } => Outgoing::HeartbeatRsp {
                from: fixed(from.uid),
                seq: *seq,
            },
            Message::GossipStatus {
                from,
                to,
                version_digest,
                seen_digest,
            } => Outgoing::GossipStatus {
                from: fixed(from.uid),
                to: fixed(to.uid),
                version_digest: fixed(*version_digest),
                seen_digest: fixed(*seen_digest),
            },
            other => Outgoing::Full(other),
        }
    }
}

impl Incoming {
    /// The message, with the addresses the link names put back.
    pub(crate) fn into_message(self, ends: LinkEnds<'_>) -> Message {
        let value = u64::from_le_bytes;
        let sender = |uid: Fixed| UniqueAddress::new(ends.sender.clone(), value(uid));
        match self {
            Incoming::Full(message) => message,
            Incoming::Heartbeat { from, seq } => Message::Heartbeat {
                from: sender(from),
                seq,
            },
            Incoming::HeartbeatRsp { from, seq } => Message::HeartbeatRsp {
                from: sender(from),
                seq,
            },
            Incoming::GossipStatus {
                from,
                to,
                version_digest,
                seen_digest,
            } => Message::GossipStatus {
                from: sender(from),
                to: UniqueAddress::new(ends.receiver.clone(), value(to)),
                version_digest: value(version_digest),
                seen_digest: value(seen_digest),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a() -> UniqueAddress {
        UniqueAddress::new(Address::new("10.0.0.1", 2551), u64::MAX - 5)
    }

    fn b() -> UniqueAddress {
        UniqueAddress::new(Address::new("10.0.0.2", 2551), 0x8000_0000_0000_0001)
    }

    fn over_a_to_b(bytes: &[u8]) -> Message {
        let (sender, receiver) = (a().address, b().address);
        let ends = LinkEnds {
            sender: &sender,
            receiver: &receiver,
        };
        decode(bytes, ends).unwrap()
    }

    #[test]
    fn the_per_tick_messages_travel_small_and_come_back_whole() {
        let tick = [
            (Message::Heartbeat { from: a(), seq: 90 }, 11),
            (Message::HeartbeatRsp { from: a(), seq: 90 }, 11),
            (
                Message::GossipStatus {
                    from: a(),
                    to: b(),
                    version_digest: u64::MAX,
                    seen_digest: 1,
                },
                34,
            ),
        ];
        for (message, size) in tick {
            let bytes = encode(&message).unwrap();
            assert_eq!(bytes.len(), size, "{message:?}");
            assert_eq!(over_a_to_b(&bytes), message);
        }
    }

    #[test]
    fn the_addresses_are_the_links_not_the_senders_claim() {
        let claim = UniqueAddress::new(Address::new("10.9.9.9", 1), a().uid);
        let bytes = encode(&Message::Heartbeat {
            from: claim,
            seq: 1,
        })
        .unwrap();
        assert_eq!(
            over_a_to_b(&bytes),
            Message::Heartbeat { from: a(), seq: 1 }
        );
    }
}
