// The wire layer (names, types, messages, the reader and writer, addresses) is its own target,
// DNSWire, with no Foundation, NIO or ldns; everything built on Resolver sees it too.

@_exported import DNSWire
