// CBatchIO: the system calls Swift's Glibc module does not offer — recvmmsg/sendmmsg for the UDP
// fast path (declared only under _GNU_SOURCE, which that module is built without) and epoll and
// eventfd for the upstream UDP exchanger, and what starting worker processes needs
// (posix_spawn's closefrom action, prctl) — behind a plain C surface.
#ifndef RESOLVERD_CBATCHIO_H
#define RESOLVERD_CBATCHIO_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <spawn.h>

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

/// epoll_create1(EPOLL_CLOEXEC).
int CBatchIO_epollCreate(void);

/// Watches `fd` for readability (level-triggered); the event carries `fd` back.
int CBatchIO_epollAdd(int epollFD, int fd);

/// Stops watching `fd`.
int CBatchIO_epollDelete(int epollFD, int fd);

/// epoll_wait: writes up to `capacity` ready descriptors to `fds`; returns their count, or -1.
int CBatchIO_epollWait(int epollFD, int *fds, int capacity, int timeoutMs);

/// eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK).
int CBatchIO_eventFD(void);

/// posix_spawn_file_actions_addclosefrom_np: the child closes every descriptor from `lowest` up.
int CBatchIO_spawnCloseFrom(posix_spawn_file_actions_t *actions, int lowest);

/// prctl(PR_SET_PDEATHSIG, signal): the calling process gets `signal` when its parent dies.
int CBatchIO_signalWhenParentDies(int signal);

#endif
