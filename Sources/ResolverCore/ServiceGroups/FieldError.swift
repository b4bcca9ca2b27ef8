// ServiceGroups/: the error of a bad field — in an API request, or in a member read back from a
// store — named so the API can answer 400 with `field: message`.

/// A bad field in an API request: the API answers 400 with `field: message`.
public struct FieldError: Error, Sendable, Equatable, CustomStringConvertible {
    public var field: String
    public var message: String

    public init(_ field: String, _ message: String) {
        self.field = field
        self.message = message
    }

    public var description: String { "\(field): \(message)" }
}
