// Replies/: how a query arrived, which decides a reply's size limit (UDP) or framing (TCP).

/// How a query arrived.
public enum Transport: String, Sendable {
    case udp, tcp
}
