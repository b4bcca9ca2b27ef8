// Support: the message reader's result as a value tests compare, and names from text. The wire
// builders and the seeded random source are WireTestSupport's, shared with ResolverTests.

import DNSWire

/// Reads `bytes`, as a value tests can compare.
func read(_ bytes: [UInt8]) -> Result<MessageView, MalformedReason> {
    do throws(MalformedReason) {
        return .success(try MessageReader.read(bytes))
    } catch {
        return .failure(error)
    }
}

/// The reason `bytes` is refused, nil when it is accepted.
func rejection(_ bytes: [UInt8]) -> MalformedReason? {
    if case .failure(let reason) = read(bytes) { return reason }
    return nil
}

func name(_ text: String) -> DomainName {
    guard let name = DomainName(text) else { fatalError("bad test name \(text)") }
    return name
}
