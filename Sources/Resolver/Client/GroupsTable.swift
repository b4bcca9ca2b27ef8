// Client/: `dig-lite groups` and `dig-lite group NAME` as readable tables.

/// Renders the service group views as aligned columns.
public enum GroupsTable {
    public static func render(_ view: GroupsView) -> String {
        guard !view.groups.isEmpty else { return "no groups registered\n" }
        var rows = [["GROUP", "MEMBERS", "HEALTHY"]]
        for group in view.groups { rows.append([group.group, "\(group.members)", "\(group.healthy)"]) }
        return TextTable.render(rows)
    }

    public static func render(_ view: GroupView) -> String {
        var rows = [["ID", "ADDRESS", "PORT", "HEALTH", "TTL LEFT", "CHECK", "LAST CHECK"]]
        for member in view.members {
            var check = member.check.type
            if let path = member.check.path { check += " " + path }
            let last = member.lastCheck.map { "\($0.healthy ? "ok" : "failed"): \($0.detail)" } ?? "-"
            rows.append([
                member.id, member.address, member.port.map(String.init) ?? "-", member.health,
                "\(Int(member.ttlLeftS.rounded(.up)))s/\(member.ttlS)s", check, last,
            ])
        }
        return TextTable.render(rows)
    }
}

/// Aligned columns separated by two spaces; the last column is not padded.
enum TextTable {
    static func render(_ rows: [[String]]) -> String {
        let widths = (rows.first ?? []).indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 || cell.count >= widths[index]
                    ? cell : cell + String(repeating: " ", count: widths[index] - cell.count)
            }.joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }
}
