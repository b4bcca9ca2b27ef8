// Observability/LineLogHandler: logfmt and JSON lines, quoting and escaping.

import Testing

@testable import Resolver

@Suite("LineLogHandler")
struct LineLogHandlerTests {
    @Test func logfmtQuotesOnlyWhatNeedsIt() {
        let line = LineLogHandler.line(
            .logfmt, timestamp: "2026-11-23T12:00:00.000Z", level: "info", message: "member healthy",
            fields: [("group", "web"), ("detail", "say \"hi\"\nthere"), ("empty", "")])
        #expect(line == "ts=2026-11-23T12:00:00.000Z level=info msg=\"member healthy\" group=web detail=\"say \\\"hi\\\"\\nthere\" empty=\"\"\n")
    }

    @Test func jsonIsOneObjectPerLineWithEverythingEscaped() {
        let line = LineLogHandler.line(
            .json, timestamp: "2026-11-23T12:00:00.000Z", level: "info", message: "query",
            fields: [("name", "a\"b\\c."), ("ctl", "\u{01}\t"), ("msg", "ignored: the message wins")])
        #expect(line == #"{"ts":"2026-11-23T12:00:00.000Z","level":"info","msg":"query","name":"a\"b\\c.","ctl":"\u0001\t"}"# + "\n")
        #expect(LineLogHandler.jsonString("é ✓") == "\"é ✓\"")
    }
}
