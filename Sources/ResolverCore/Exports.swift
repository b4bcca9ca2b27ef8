// Everything above ResolverCore reads messages through DNSWire.

@_exported import DNSWire
