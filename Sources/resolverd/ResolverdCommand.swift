// resolverd: read the config, apply command-line overrides, run the application until SIGTERM
// or SIGINT. Wiring only; everything else lives in the Resolver library.

import ArgumentParser
import Foundation
import Logging
import Resolver
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

struct ResolverdCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resolverd",
        abstract: "A caching DNS resolver with service discovery.",
        version: resolverdVersion)

    @Option(name: .long, help: "The config file (TOML).")
    var config: String = "config/resolverd.toml"

    @Option(name: .long, help: "DNS listen address (ADDR:PORT, [IPv6]:PORT); repeatable; replaces server.listen.")
    var listen: [String] = []

    @Option(name: .customLong("api-listen"), help: "HTTP API address (ADDR:PORT); replaces api.listen.")
    var apiListen: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String?

    /// Set by the supervisor when it starts worker N (server.workers); not for operators.
    @Option(name: .long, help: .hidden)
    var worker: Int?

    @Option(name: .customLong("control-fd"), help: .hidden)
    var controlFD: Int32 = 3

    func run() async throws {
        let settings = loadConfig()
        let level = Logger.Level(rawValue: settings.log.level) ?? .info
        let format = settings.log.format
        LineLogHandler.setSharedLevel(level)
        LoggingSystem.bootstrap { LineLogHandler(label: $0, format: format) }
        var logger = Logger(label: "resolverd")
        let role: ProcessRole
        if let worker {
            role = .worker(index: worker, controlDescriptor: controlFD)
            logger[metadataKey: "worker"] = "\(worker)"
        } else if settings.server.workers > 0 {
            let (listen, reservation) = WorkerLaunch.reservingPorts(settings.server.listen)
            role = .supervisor(WorkerLaunch(arguments: workerArguments(listen: listen), reservation: reservation))
        } else {
            role = .single
        }
        let application: ResolverApplication
        do {
            application = try ResolverApplication(
                config: settings, logger: logger, reloadConfig: { () throws(ConfigError) -> Config in try readConfig() },
                role: role)
        } catch {
            logger.critical("stopped", metadata: ["error": "\(error)"])
            throw ExitCode(1)
        }
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: application)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            // Errors at start-up (a port in use, an address not on this host) are fatal.
            logger.critical("stopped", metadata: ["error": "\(error)"])
            throw ExitCode(1)
        }
    }

    /// Reads and validates the config; errors name the file, line and key, and exit with 2.
    private func loadConfig() -> Config {
        do {
            return try readConfig()
        } catch {
            fail("\(config): \(error)")
        }
    }

    /// What makes this executable worker `index` of a supervisor: the same file and overrides,
    /// the ports fixed, and a private admin API on loopback.
    private func workerArguments(listen: [ServerAddress]) -> @Sendable (Int) -> [String] {
        var common = ["--config", config, "--api-listen", "127.0.0.1:0"]
        for address in listen { common += ["--listen", address.description] }
        if let logLevel { common += ["--log-level", logLevel] }
        let shared = common
        return { index in shared + ["--worker", "\(index)", "--control-fd", "3"] }
    }

    /// The config file with the command line's overrides applied (also what a reload reads).
    /// A worker takes its share of the cache and of the pending cap (the workers together keep to
    /// cache.max_bytes and server.max_pending).
    private func readConfig() throws(ConfigError) -> Config {
        var settings = try Config.load(path: config)
        if !listen.isEmpty {
            var addresses: [ServerAddress] = []
            for text in listen {
                guard let address = ServerAddress(text) else {
                    throw ConfigError(key: "--listen", line: nil, message: "'\(text)' is not ADDR:PORT")
                }
                addresses.append(address)
            }
            settings.server.listen = addresses
        }
        if let apiListen {
            guard let address = ServerAddress(apiListen, defaultPort: 8053) else {
                throw ConfigError(key: "--api-listen", line: nil, message: "'\(apiListen)' is not ADDR:PORT")
            }
            settings.api.listen = address
            try settings.api.validate(key: "--api-listen", line: nil)
        }
        if let logLevel {
            guard Config.logLevels.contains(logLevel) else {
                throw ConfigError(
                    key: "--log-level", line: nil, message: "must be one of \(Config.logLevels.joined(separator: ", "))")
            }
            settings.log.level = logLevel
        }
        if worker != nil, settings.server.workers > 0 {
            settings.cache.maxBytes /= settings.server.workers
            settings.server.maxPending = max(1, settings.server.maxPending / settings.server.workers)
        }
        if worker != nil {
            // A worker's admin API is private (loopback, asked by its supervisor only): plain
            // HTTP, and the supervisor's per-run token instead of the operators' tokens.
            settings.api.token = ProcessInfo.processInfo.environment[WorkerLaunch.workerTokenVariable] ?? ""
            settings.api.groupTokens = [:]
            settings.api.tlsCertificate = ""
            settings.api.tlsKey = ""
        }
        return settings
    }

    private func fail(_ message: String) -> Never {
        writeStandardError("resolverd: config error: \(message)\n")
        Glibc.exit(2)
    }
}
