// Frontend/: DNS over a stream (RFC 1035 §4.2.2, RFC 7766 §8): every message after a two-octet
// length. The framer keeps the bytes received and not yet taken as messages; the TCP handler takes
// messages only as fast as its limits allow and stops reading while it cannot, so what is kept
// here is bounded by one read plus one message.

import NIOCore

/// Splits a DNS byte stream into messages.
struct StreamFramer {
    private var buffer: ByteBuffer?

    /// Bytes received and not yet handed out as a message.
    var bufferedBytes: Int { buffer?.readableBytes ?? 0 }

    /// Whether a whole message is waiting to be taken.
    var hasWholeMessage: Bool {
        guard let buffer, let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self) else { return false }
        return buffer.readableBytes >= 2 + Int(length)
    }

    /// Whether part of a message has arrived and the rest has not.
    var hasPartialMessage: Bool { bufferedBytes > 0 && !hasWholeMessage }

    mutating func append(_ bytes: inout ByteBuffer) {
        if buffer == nil {
            buffer = bytes
        } else {
            buffer?.writeBuffer(&bytes)
        }
    }

    /// The next whole message (without its length), or nil while none is complete.
    mutating func next() -> ByteBuffer? {
        guard hasWholeMessage, var rest = buffer, let length = rest.readInteger(as: UInt16.self),
            let message = rest.readSlice(length: Int(length))
        else { return nil }
        if rest.readableBytes == 0 {
            buffer = nil
        } else {
            // Slices keep the storage alive; copying the rest down once it is the smaller part keeps
            // the buffer from growing with the stream.
            if rest.readerIndex > rest.readableBytes { rest.discardReadBytes() }
            buffer = rest
        }
        return message
    }
}
