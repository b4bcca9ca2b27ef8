// CBatchIO: recvmmsg/sendmmsg for the UDP fast path. Glibc declares them only under _GNU_SOURCE,
// which Swift's Glibc module is built without, so this target compiles them with it and hands
// Swift a plain C surface.
#ifndef RESOLVERD_CBATCHIO_H
#define RESOLVERD_CBATCHIO_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/uio.h>

/// One datagram slot: the message header and the length the kernel filled in (mmsghdr's layout).
typedef struct {
    struct msghdr header;
    unsigned int length;
} CBatchIO_message;

/// recvmmsg(2): receives up to `count` datagrams; with MSG_WAITFORONE blocks for the first only.
int CBatchIO_receive(int fd, CBatchIO_message *messages, unsigned int count, int flags);

/// sendmmsg(2): sends up to `count` datagrams; returns how many went out, or -1.
int CBatchIO_send(int fd, CBatchIO_message *messages, unsigned int count, int flags);

/// MSG_WAITFORONE (a GNU flag).
int CBatchIO_waitForOne(void);

#endif
