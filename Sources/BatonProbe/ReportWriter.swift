import Foundation

/// Writes a probe run as JSON and as one self-contained HTML page (inline SVG, no network):
/// requests per second by release, p50/p99 per second, failures per second, and the deploy's
/// events on the same time axis.
public struct ReportWriter: Sendable {
    /// A moment worth marking on the time axis (a deploy step), in seconds from the probe's start.
    public struct Marker: Codable, Sendable, Equatable {
        public var at: Double
        public var label: String

        public init(at: Double, label: String) {
            self.at = at
            self.label = label
        }
    }

    public init() {}

    public func json(_ result: ProbeResult, markers: [Marker]) throws -> Data {
        struct Report: Encodable {
            var summary: String
            var total: Int
            var failed: Int
            var logouts: Int
            var lostWrites: [String]
            var acknowledgedWrites: Int
            var p50Milliseconds: Double
            var p99Milliseconds: Double
            /// Each failed request and logout: time, status, reason, request.
            var failures: [ProbeRecord]
            var releaseNote: String?
            var ui: UILevel
            var seconds: [ProbeResult.Second]
            var markers: [Marker]
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(Report(
            summary: result.summary, total: result.total, failed: result.failed, logouts: result.logouts,
            lostWrites: result.lostWrites, acknowledgedWrites: result.acknowledgedWrites,
            p50Milliseconds: result.p50 * 1000, p99Milliseconds: result.p99 * 1000, failures: result.problems,
            releaseNote: result.releaseNote, ui: result.ui, seconds: result.seconds, markers: markers
        ))
    }

    public func html(_ result: ProbeResult, markers: [Marker], title: String) -> String {
        let seconds = result.seconds
        let releases = Array(Set(seconds.flatMap { $0.byRelease.keys })).sorted()
        let palette = ["#2563eb", "#16a34a", "#9333ea", "#ea580c", "#0891b2"]
        var requestSeries: [(String, String, [Double])] = []
        for (index, release) in releases.enumerated() {
            requestSeries.append(("release \(release)", palette[index % palette.count], seconds.map { Double($0.byRelease[release] ?? 0) }))
        }
        let charts = [
            chart(id: "requests", title: "Requests per second by release", unit: "req/s", series: requestSeries, markers: markers),
            chart(id: "latency", title: "Latency per second", unit: "ms", series: [
                ("p50", "#2563eb", seconds.map { $0.p50 * 1000 }), ("p99", "#dc2626", seconds.map { $0.p99 * 1000 }),
            ], markers: markers),
            chart(id: "failures", title: "Failures and logouts per second", unit: "per s", series: [
                ("failed", "#dc2626", seconds.map { Double($0.failed) }), ("logouts", "#ea580c", seconds.map { Double($0.logouts) }),
            ], markers: markers),
        ]
        let verdictColor = result.failed == 0 && result.logouts == 0 && result.lostWrites.isEmpty ? "#16a34a" : "#dc2626"
        let events = markers.map { "<li>\(String(format: "%.1f", $0.at)) s — \(escape($0.label))</li>" }.joined()
        let problems = result.problems.prefix(500).map { record in
            "<tr><td>\(String(format: "%.3f", record.at)) s</td><td>\(record.outcome.rawValue)</td><td>\(escape(record.request ?? "-"))</td>"
                + "<td>\(record.status == 0 ? "no response" : String(record.status))</td><td>\(escape(record.error ?? "-"))</td><td>\(escape(record.backend ?? "-"))</td></tr>"
        }.joined()
        let failureTable = problems.isEmpty
            ? "<p id=\"failures-list\">none</p>"
            : "<table id=\"failures-list\"><tr><th>time</th><th>what</th><th>request</th><th>status</th><th>reason</th><th>backend</th></tr>\(problems)</table>"
        let ui = result.ui
        let uiColor = ui.mismatches == 0 && ui.assetsMissing == 0 ? "#16a34a" : "#dc2626"
        let uiExamples = ui.examples.map { "<li>\(escape($0))</li>" }.joined()
        let uiPanel = ui.pageLoads == 0
            ? "<p id=\"ui-level\">no page loads (no response was text/html)</p>"
            : "<p class=\"summary\" id=\"ui-level\" style=\"border-left-color: \(uiColor)\">\(escape(ui.summary))</p>"
                + (uiExamples.isEmpty ? "" : "<ul id=\"ui-examples\">\(uiExamples)</ul>")
        let note = result.releaseNote.map { "<p class=\"note\" id=\"release-note\">\(escape($0))</p>" } ?? ""
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"/><title>\(escape(title))</title>
            <style>
            body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 980px; color: #111; }
            h1 { font-size: 1.4em; } .summary { font-size: 1.1em; padding: .6em 1em; border-left: 6px solid \(verdictColor); background: #f8fafc; }
            table { border-collapse: collapse; font-size: .9em; } td, th { border: 1px solid #e5e7eb; padding: .2em .5em; text-align: left; }
            .note { color: #92400e; } svg { background: #fff; border: 1px solid #e5e7eb; margin: .5em 0 1.5em; } .legend span { margin-right: 1.2em; }
            </style></head>
            <body>
            <h1>\(escape(title))</h1>
            <p class="summary" id="summary">\(escape(result.summary))</p>
            \(note)
            \(charts.joined(separator: "\n"))
            <h2>User interface: pages and the releases behind them</h2>
            <p>Each virtual user keeps a cookie jar like a browser. A page load is an HTML response; its scripts are fetched, and every later request of that user is compared with the page's release until the next page load.</p>
            \(uiPanel)
            <h2>Failed requests and logouts</h2>\(failureTable)
            <h2>Deploy events</h2><ul id="events">\(events.isEmpty ? "<li>none recorded</li>" : events)</ul>
            </body></html>
            """
    }

    private func chart(id: String, title: String, unit: String, series: [(String, String, [Double])], markers: [Marker]) -> String {
        let width = 940.0, height = 220.0, left = 50.0, bottom = 24.0, top = 10.0
        let count = max(series.map(\.2.count).max() ?? 1, 2)
        let peak = max(series.flatMap(\.2).max() ?? 1, 1)
        func x(_ second: Double) -> Double { left + (width - left - 10) * second / Double(count - 1) }
        func y(_ value: Double) -> Double { top + (height - top - bottom) * (1 - value / peak) }
        var parts: [String] = []
        for step in 0...4 {
            let value = peak * Double(step) / 4
            parts.append("<line x1=\"\(left)\" x2=\"\(width - 10)\" y1=\"\(y(value))\" y2=\"\(y(value))\" stroke=\"#f1f5f9\"/>")
            parts.append("<text x=\"\(left - 6)\" y=\"\(y(value) + 4)\" font-size=\"10\" text-anchor=\"end\">\(format(value))</text>")
        }
        for marker in markers {
            parts.append("<line x1=\"\(x(marker.at))\" x2=\"\(x(marker.at))\" y1=\"\(top)\" y2=\"\(height - bottom)\" stroke=\"#94a3b8\" stroke-dasharray=\"3,3\"><title>\(escape(marker.label))</title></line>")
        }
        for (name, color, values) in series {
            let points = values.enumerated().map { "\(format(x(Double($0.offset)))),\(format(y($0.element)))" }.joined(separator: " ")
            parts.append("<polyline class=\"series\" data-series=\"\(escape(name))\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.6\" points=\"\(points)\"/>")
        }
        parts.append("<text x=\"\(left)\" y=\"\(height - 6)\" font-size=\"10\">0 s</text>")
        parts.append("<text x=\"\(width - 10)\" y=\"\(height - 6)\" font-size=\"10\" text-anchor=\"end\">\(count - 1) s</text>")
        let legend = series.map { "<span style=\"color:\($0.1)\">■ \(escape($0.0))</span>" }.joined()
        return """
            <h2>\(escape(title)) <small>(\(unit))</small></h2><div class="legend">\(legend)</div>
            <svg id="\(id)" xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))">\(parts.joined())</svg>
            """
    }

    private func format(_ value: Double) -> String {
        value >= 100 ? String(Int(value.rounded())) : String(format: "%.1f", value)
    }

    private func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
