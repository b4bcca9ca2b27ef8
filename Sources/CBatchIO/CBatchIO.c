#define _GNU_SOURCE
#include "CBatchIO.h"

#include <assert.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>

static_assert(sizeof(CBatchIO_message) == sizeof(struct mmsghdr), "CBatchIO_message must match mmsghdr");
static_assert(offsetof(CBatchIO_message, length) == offsetof(struct mmsghdr, msg_len), "msg_len offset");

int CBatchIO_receive(int fd, CBatchIO_message *messages, unsigned int count, int flags) {
    return recvmmsg(fd, (struct mmsghdr *)messages, count, flags, NULL);
}

int CBatchIO_send(int fd, CBatchIO_message *messages, unsigned int count, int flags) {
    return sendmmsg(fd, (struct mmsghdr *)messages, count, flags);
}

int CBatchIO_waitForOne(void) { return MSG_WAITFORONE; }

int CBatchIO_epollCreate(void) { return epoll_create1(EPOLL_CLOEXEC); }

int CBatchIO_epollAdd(int epollFD, int fd) {
    struct epoll_event event = {.events = EPOLLIN, .data.fd = fd};
    return epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, &event);
}

int CBatchIO_epollDelete(int epollFD, int fd) { return epoll_ctl(epollFD, EPOLL_CTL_DEL, fd, NULL); }

int CBatchIO_epollWait(int epollFD, int *fds, int capacity, int timeoutMs) {
    struct epoll_event events[64];
    if (capacity > 64) capacity = 64;
    int ready = epoll_wait(epollFD, events, capacity, timeoutMs);
    for (int index = 0; index < ready; index++) fds[index] = events[index].data.fd;
    return ready;
}

int CBatchIO_eventFD(void) { return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }

int CBatchIO_spawnCloseFrom(posix_spawn_file_actions_t *actions, int lowest) {
    return posix_spawn_file_actions_addclosefrom_np(actions, lowest);
}

int CBatchIO_signalWhenParentDies(int signal) { return prctl(PR_SET_PDEATHSIG, (unsigned long)signal, 0, 0, 0); }
