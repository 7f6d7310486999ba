import BatonCore
import Foundation

/// The shell script every instance runs under: POSIX sh only, so the same file can go to any
/// host. It records itself, runs the release's command in the foreground and, when the command
/// exits by itself, records the exit and starts it again after a growing pause (1 s doubling to
/// 30 s, back to 1 s after a run of 30 s or more). The proxies' health checks take a crashed
/// instance out of rotation meanwhile.
///
/// It is stopped through its process group (it leads its own session): the signal reaches the
/// command, which ends; the script's trap then ends the supervision instead of restarting. A
/// foreground child keeps its signals as they were (a background one would have SIGINT and
/// SIGQUIT ignored), so any stop signal works.
///
/// Its state file holds one line: `SUPERVISOR_PID PORT RESTARTS LAST_EXIT_STATUS`.
public enum Supervisor {
    public static let script = #"""
        #!/bin/sh
        # baton-supervise STATE_FILE PORT COMMAND: runs COMMAND, restarting it when it exits.
        state=$1 port=$2 command=$3
        restarts=0 status=- stopping=
        save() { printf '%s %s %s %s\n' "$$" "$port" "$restarts" "$status" > "$state.tmp" && mv -f "$state.tmp" "$state"; }
        for signal in TERM INT QUIT HUP USR1 USR2; do trap 'stopping=1' "$signal"; done
        save
        backoff=1
        while :; do
            started=$(date +%s)
            /bin/sh -c "exec $command"
            status=$?
            [ -n "$stopping" ] && exit 0
            ran=$(( $(date +%s) - started ))
            [ "$ran" -ge 30 ] && backoff=1
            restarts=$((restarts + 1))
            save
            echo "baton-supervise: the release exited with status $status after ${ran}s; restart $restarts in ${backoff}s" >&2
            sleep "$backoff"
            [ -n "$stopping" ] && exit 0
            backoff=$((backoff * 2))
            [ "$backoff" -gt 30 ] && backoff=30
        done
        """#

    /// Writes the script under `directory` (only when it differs) and returns its path.
    public static func install(into directory: String) throws -> String {
        let path = directory + "/baton-supervise"
        if (try? String(contentsOfFile: path, encoding: .utf8)) != script {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let temporary = path + ".\(getpid()).tmp"
            try script.write(toFile: temporary, atomically: false, encoding: .utf8)
            chmod(temporary, 0o755)
            guard rename(temporary, path) == 0 else { throw BatonError(.io, "cannot install \(path): \(String(cString: strerror(errno)))") }
        }
        return path
    }
}
