//! What one transport frame carries: a membership message or a service message,
//! each in its own envelope.
//!
//! The membership core's wire type (`crate::wire::Message`) knows nothing of the
//! service; the transport multiplexes both protocols over one authenticated link and
//! the node hands each envelope to its owner. Frames are postcard-encoded
//! `(protocol version, frame)` pairs, bounded and validated like membership messages.

use crate::address::UniqueAddress;
use crate::link_form::{Incoming, LinkEnds, Outgoing};
use crate::service::ServiceBody;
use crate::wire::{self, Message, WireError};
use crate::Address;
use serde::{Deserialize, Serialize};

/// One frame on the cluster transport.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Frame {
    /// For the membership core.
    Membership(Message),
    /// For the recommendation service (see `crate::service`).
    Service {
        /// Sender.
        from: UniqueAddress,
        /// The message.
        body: ServiceBody,
    },
}

impl Frame {
    /// A short name for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Frame::Membership(message) => message.kind(),
            Frame::Service { body, .. } => body.kind(),
        }
    }

    /// The address of the node that sent it (the transport checks it against the
    /// authenticated peer, so no peer can speak for another).
    pub fn sender(&self) -> &Address {
        match self {
            Frame::Membership(message) => message.sender(),
            Frame::Service { from, .. } => &from.address,
        }
    }
}

/// A frame as encoded: membership messages in their link form.
#[derive(Serialize)]
enum FrameOut<'a> {
    Membership(Outgoing<'a>),
    Service {
        from: &'a UniqueAddress,
        body: &'a ServiceBody,
    },
}

/// A frame as decoded: the same variants, in the same order, owned.
#[derive(Deserialize)]
enum FrameIn {
    Membership(Incoming),
    Service {
        from: UniqueAddress,
        body: ServiceBody,
    },
}

/// Encodes a frame as one transport payload.
pub fn encode(frame: &Frame) -> Result<Vec<u8>, WireError> {
    let out = match frame {
        Frame::Membership(message) => FrameOut::Membership(Outgoing::of(message)),
        Frame::Service { from, body } => FrameOut::Service { from, body },
    };
    wire::encode_versioned(&out)
}

/// Decodes and validates one transport payload that came over the link `ends`.
pub fn decode(bytes: &[u8], ends: LinkEnds<'_>) -> Result<Frame, WireError> {
    let frame = match wire::decode_versioned(bytes)? {
        FrameIn::Membership(incoming) => Frame::Membership(incoming.into_message(ends)),
        FrameIn::Service { from, body } => Frame::Service { from, body },
    };
    match &frame {
        Frame::Membership(message) => wire::validate(message)?,
        Frame::Service { from, body } => {
            wire::check_address(&from.address)?;
            body.validate()
                .map_err(|e| WireError::Invalid(e.to_string()))?;
        }
    }
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sender() -> UniqueAddress {
        UniqueAddress::new(Address::new("10.0.0.1", 2551), 7)
    }

    /// Decodes as the node at 10.0.0.2 would, from a link to `sender()`.
    fn decode(bytes: &[u8]) -> Result<Frame, WireError> {
        let (from, me) = (sender().address, Address::new("10.0.0.2", 2551));
        super::decode(
            bytes,
            LinkEnds {
                sender: &from,
                receiver: &me,
            },
        )
    }

    #[test]
    fn both_envelopes_round_trip() {
        let frames = [
            Frame::Membership(Message::InitJoinNack { from: sender() }),
            Frame::Membership(Message::Heartbeat {
                from: sender(),
                seq: 3,
            }),
            Frame::Service {
                from: sender(),
                body: ServiceBody::Stored { id: 9 },
            },
        ];
        for frame in frames {
            let bytes = encode(&frame).unwrap();
            assert_eq!(decode(&bytes).unwrap(), frame);
            assert_eq!(frame.sender(), &sender().address);
        }
    }

    #[test]
    fn a_frame_with_an_empty_host_or_a_foreign_version_is_refused() {
        let nameless = Frame::Service {
            from: UniqueAddress::new(Address::new("", 1), 1),
            body: ServiceBody::Stored { id: 1 },
        };
        let bytes = encode(&nameless).unwrap();
        assert!(matches!(decode(&bytes), Err(WireError::Invalid(_))));
        let foreign = postcard::to_allocvec(&(wire::PROTOCOL_VERSION + 1, 0u8)).unwrap();
        assert_eq!(
            decode(&foreign),
            Err(WireError::UnsupportedVersion(wire::PROTOCOL_VERSION + 1))
        );
        let mut trailing =
            encode(&Frame::Membership(Message::InitJoinNack { from: sender() })).unwrap();
        trailing.push(0);
        assert!(matches!(decode(&trailing), Err(WireError::Malformed(_))));
    }
}
