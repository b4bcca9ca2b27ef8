// Frontend/: who may ask. Clients outside the allow list get REFUSED, so resolverd is never an
// open resolver by default (RFC 5358).

import NIOCore

/// The networks allowed to query.
public struct AccessControl: Sendable {
    public let allowed: [IPNetwork]

    public init(allowed: [IPNetwork]) { self.allowed = allowed }

    public func permits(_ client: SocketAddress) -> Bool {
        guard let ip = IPAddress(socketAddress: client) else { return false }
        return allowed.contains { $0.contains(ip) }
    }
}
