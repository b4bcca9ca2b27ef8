#define _GNU_SOURCE
#include "CBatchIO.h"

#include <assert.h>
#include <stddef.h>

static_assert(sizeof(CBatchIO_message) == sizeof(struct mmsghdr), "CBatchIO_message must match mmsghdr");
static_assert(offsetof(CBatchIO_message, length) == offsetof(struct mmsghdr, msg_len), "msg_len offset");

int CBatchIO_receive(int fd, CBatchIO_message *messages, unsigned int count, int flags) {
    return recvmmsg(fd, (struct mmsghdr *)messages, count, flags, NULL);
}

int CBatchIO_send(int fd, CBatchIO_message *messages, unsigned int count, int flags) {
    return sendmmsg(fd, (struct mmsghdr *)messages, count, flags);
}

int CBatchIO_waitForOne(void) { return MSG_WAITFORONE; }
