// CLDNS: the C surface of ldns that resolverd uses. Only Sources/Resolver/Wire/LDNSCodec.swift
// imports this module; nothing above it sees an ldns pointer.
#ifndef RESOLVERD_CLDNS_SHIM_H
#define RESOLVERD_CLDNS_SHIM_H

#include <stdlib.h>
#include <ldns/ldns.h>

/// Frees memory that ldns allocated with malloc (strings from *2str, buffers from *2wire).
static inline void CLDNS_free(void *pointer) { free(pointer); }

/// The first byte of an ldns buffer's data (ldns_buffer_begin is an inline function over a
/// struct field; wrapped so Swift does not depend on the struct layout).
static inline const uint8_t *CLDNS_buffer_bytes(ldns_buffer *buffer) { return ldns_buffer_begin(buffer); }

/// How many bytes have been written to an ldns buffer.
static inline size_t CLDNS_buffer_length(ldns_buffer *buffer) { return ldns_buffer_position(buffer); }

#endif
