// API/: the API's bearer tokens. With no `api.token` configured, resolverd makes a random one on
// first start (32 bytes from the system CSPRNG, hex) and keeps it in a file only its user may read
// (0600, written to a temporary name and linked into place, so a reader never sees half a token
// and two starting instances agree on one); later starts read it back. Tokens are compared in
// constant time, so the time of a refusal says nothing about how much of a guess was right.

import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Why the token file could not be read or made.
public struct APITokenError: Error, Sendable, CustomStringConvertible {
    public var path: String
    public var message: String

    public var description: String { "api token file '\(path)': \(message)" }
}

/// Making, keeping and comparing bearer tokens.
public enum APIToken {
    /// Configured tokens shorter than this are refused (a generated one has 64 characters).
    public static let minimumLength = 16

    /// Whether a configured token is long enough and has no spaces (a header cannot carry them).
    public static func isStrong(_ token: String) -> Bool {
        token.count >= minimumLength && !token.contains { $0.isWhitespace || !$0.isASCII }
    }

    /// 32 random bytes as 64 hex digits.
    public static func random<Generator: RandomNumberGenerator>(using generator: inout Generator) -> String {
        let digits = Array("0123456789abcdef")
        var text = ""
        for _ in 0..<32 {
            let byte = UInt8.random(in: 0...255, using: &generator)
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return text
    }

    /// A token from the system's CSPRNG (getrandom).
    public static func random() -> String {
        var generator = SystemRandomNumberGenerator()
        return random(using: &generator)
    }

    /// Whether `presented` equals `expected`, in a time that depends only on `expected`'s length.
    public static func matches(_ presented: some Collection<UInt8>, _ expected: some Collection<UInt8>) -> Bool {
        let given = Array(presented)
        var difference: UInt8 = given.count == expected.count ? 0 : 1
        var index = 0
        for byte in expected {
            // Past the end of a shorter guess, compare with 0: the loop runs expected.count times.
            let other = index < given.count ? given[index] : 0
            difference |= byte ^ other
            index += 1
        }
        return difference == 0
    }

    /// The token kept at `path`: read when the file exists, made (with its folder) otherwise.
    /// Returns the token and whether it was made now.
    public static func loadOrCreate(path: String) throws(APITokenError) -> (token: String, created: Bool) {
        if let existing = try read(path) { return (existing, false) }
        try makeFolder(of: path)
        let token = random()
        let temporary = "\(path).\(getpid()).tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw failure(path, "cannot create \(temporary)") }
        let bytes = Array((token + "\n").utf8)
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        let synced = fsync(descriptor) == 0 ? 0 : errno
        close(descriptor)
        defer { unlink(temporary) }
        guard written == bytes.count, synced == 0 else { throw failure(path, "cannot write \(temporary)", code: synced) }
        // link() never replaces: if another instance made the file meanwhile, theirs is the token.
        if link(temporary, path) != 0 {
            guard errno == EEXIST, let theirs = try read(path) else { throw failure(path, "cannot create it") }
            return (theirs, false)
        }
        return (token, true)
    }

    /// The token in an existing file (its first line, trimmed); nil when there is no file.
    static func read(_ path: String) throws(APITokenError) -> String? {
        var status = stat()
        guard stat(path, &status) == 0 else {
            guard errno == ENOENT else { throw failure(path, "cannot read it") }
            return nil
        }
        guard let text = readTextFile(path) else { throw failure(path, "cannot read it") }
        let token = text.split(whereSeparator: \.isNewline).first.map { $0.trimmingSpaces } ?? ""
        guard isStrong(token) else {
            throw APITokenError(
                path: path, message: "holds no token of at least \(minimumLength) characters; delete it to have one made")
        }
        return token
    }

    /// Whether group or others may read the file (the daemon warns).
    public static func isExposed(_ path: String) -> Bool {
        var status = stat()
        return stat(path, &status) == 0 && status.st_mode & 0o077 != 0
    }

    private static func makeFolder(of path: String) throws(APITokenError) {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return }
        let folder = String(path[..<slash])
        do {
            try FileManager.default.createDirectory(
                atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw APITokenError(path: path, message: "cannot create the folder \(folder)")
        }
    }

    /// An error with the system's reason (`code`, errno when 0).
    private static func failure(_ path: String, _ message: String, code: Int32 = 0) -> APITokenError {
        APITokenError(path: path, message: "\(message): \(String(cString: strerror(code == 0 ? errno : code)))")
    }
}

extension Substring {
    fileprivate var trimmingSpaces: String {
        String(drop { $0 == " " || $0 == "\t" || $0 == "\r" }.reversed().drop { $0 == " " || $0 == "\t" || $0 == "\r" }.reversed())
    }
}
