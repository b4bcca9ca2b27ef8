// Workers/: the worker's side of the control channel. The worker waits for the registry snapshot
// before it binds its DNS sockets (so a restarted worker never answers NXDOMAIN for a group it
// has not heard of yet), then a thread applies every change as it arrives. When the supervisor
// goes away (the channel closes) the worker shuts down.

import CBatchIO
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// A store for a worker's registry: the supervisor stores, the worker only mirrors.
struct MirrorStore: RegistryStore {
    func loadAll() async throws(RegistryError) -> StoredMembers { StoredMembers(members: []) }

    func save(_ changes: [RegistryChange]) async throws(RegistryError) {
        throw RegistryError("a worker's registry is a mirror: changes go through the supervisor")
    }
}

/// The worker's end of its control channel.
final class WorkerLink: Sendable {
    private let channel: ControlChannel
    private let logger: Logger

    init(descriptor: Int32, logger: Logger) {
        // A supervisor killed outright closes the channel too; this is the quicker word.
        _ = CBatchIO_signalWhenParentDies(SIGTERM)
        channel = ControlChannel(descriptor: descriptor)
        self.logger = logger
    }

    /// Waits (off the concurrency pool) for the snapshot, shows it in `registry`, then keeps
    /// applying changes on a thread of its own; `onClose` runs when the supervisor is gone.
    func follow(_ registry: ServiceRegistry, onClose: @escaping @Sendable () -> Void) async throws(WorkerStartError) {
        let first: ReceivedSnapshot? = await withCheckedContinuation { continuation in
            Thread { [channel] in continuation.resume(returning: channel.receiveSnapshot(timeoutMs: 30_000)) }.start()
        }
        guard let snapshot = first else { throw WorkerStartError(description: "no registry snapshot from the supervisor") }
        // Each record is checked as a registration is; a bad one is skipped, never trapped on.
        var members: [Member] = []
        members.reserveCapacity(snapshot.members.count)
        for record in snapshot.members {
            do {
                members.append(try record.member())
            } catch {
                logger.error("bad registry member from the supervisor skipped", metadata: ["error": "\(error)"])
            }
        }
        registry.mirror(all: members)
        registry.setStatus(snapshot.status)
        let thread = Thread { [channel, logger] in
            while case .message(let message) = channel.receive() {
                if let status = message.status { registry.setStatus(status.status) }
                for record in message.changes ?? [] {
                    do {
                        registry.mirror([try record.change()])
                    } catch {
                        logger.error("bad registry change from the supervisor skipped", metadata: ["error": "\(error)"])
                    }
                }
            }
            onClose()
        }
        thread.name = "registry-feed"
        thread.start()
    }

    /// Tells the supervisor this worker is answering.
    func ready(api: String, dns: [ServerAddress]) {
        _ = channel.send(ControlMessage(ready: WorkerReady(pid: getpid(), api: api, dns: dns.map(\.description))))
    }
}
