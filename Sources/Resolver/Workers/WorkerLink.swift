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
    func loadAll() async throws(RegistryError) -> [Member] { [] }

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
        let first: ControlChannel.Received = await withCheckedContinuation { continuation in
            Thread { [channel] in continuation.resume(returning: channel.receive(timeoutMs: 30_000)) }.start()
        }
        guard case .message(let message) = first, let snapshot = message.snapshot else {
            throw WorkerStartError(description: "no registry snapshot from the supervisor")
        }
        do {
            registry.mirror(all: try snapshot.map { record throws(RegistryError) in try record.member() })
        } catch {
            throw WorkerStartError(description: "registry snapshot: \(error)")
        }
        let thread = Thread { [channel, logger] in
            while case .message(let message) = channel.receive() {
                guard let records = message.changes else { continue }
                do {
                    registry.mirror(try records.map { record throws(RegistryError) in try record.change() })
                } catch {
                    logger.error("bad registry change from the supervisor", metadata: ["error": "\(error)"])
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
