// Client/: `dig-lite servers` as a readable table.

/// Renders the selection view as aligned columns.
public enum ServersTable {
    public static func render(_ response: ServersResponse) -> String {
        var rows: [[String]] = [["ZONE", "SERVER", "STATE", "SRTT", "RTTVAR", "RTO", "QUERIES", "TIMEOUTS", "ERRORS", "LATE", "HEDGED", "WON", "DOWN FOR"]]
        func ms(_ value: Double?) -> String {
            guard let value else { return "-" }
            return value < 10 ? "\(Double(Int(value * 10)) / 10)ms" : "\(Int(value.rounded()))ms"
        }
        for zone in response.zones {
            for server in zone.servers {
                rows.append([
                    zone.zone, server.address, server.state.rawValue, ms(server.srttMs), ms(server.rttvarMs), ms(server.rtoMs),
                    "\(server.queries)", "\(server.timeouts)", "\(server.errors)", "\(server.late)", "\(server.hedged)",
                    "\(server.hedgesWon)", ms(server.downForMs),
                ])
            }
        }
        if response.zones.isEmpty { return "no zones asked yet\n" }
        return TextTable.render(rows)
    }
}
