// resolverd's entry point. SIGTERM, SIGINT and SIGHUP are blocked before any thread exists, so
// every thread inherits the mask and the signals reach only swift-service-lifecycle's signalfd
// readers: a signal landing on an event-loop thread would otherwise end the process at once.

import ArgumentParser
import Resolver

blockLifecycleSignals()
await start(ResolverdCommand.self)

/// Runs the command's async `main` (top-level code would pick the synchronous overload).
func start<Command: AsyncParsableCommand>(_ command: Command.Type) async {
    await command.main()
}
