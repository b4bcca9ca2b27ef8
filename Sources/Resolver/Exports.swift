// The layers below this one are targets of their own, and everything built on Resolver sees them:
// DNSWire (names, types, messages, the reader and writer, addresses: no Foundation, NIO or ldns)
// and ResolverCore (pure policy told the time: recursion's state machine, response
// classification, selection, the caches, member lifecycle).

@_exported import DNSWire
@_exported import ResolverCore
