import Foundation
import GRDB
import WorkflowPrimitive

/// Online backup and restore of an embedded SQLite database (SQLite's backup API).
public enum SQLiteBackup {
    /// Copies the database at `path` into a new file at `destination`, consistently, while a server may be writing to
    /// it: the copy is taken inside one read transaction, so it holds exactly what was committed when it began.
    /// The copy is written beside the destination and renamed into place once checked, so a failed backup leaves no
    /// file that looks like one. Returns the number of runs the copy holds.
    public static func backup(databaseAt path: String, to destination: String) throws -> Int {
        guard FileManager.default.fileExists(atPath: path) else {
            throw WorkflowError(.notFound, "no database at \(path) (is --data-dir right?)")
        }
        guard !FileManager.default.fileExists(atPath: destination) else {
            throw WorkflowError(.invalidRequest, "\(destination) exists; a backup never overwrites a file")
        }
        let partial = destination + ".partial"
        try? FileManager.default.removeItem(atPath: partial)
        var configuration = Configuration()
        configuration.busyMode = .timeout(30)
        let source = try DatabaseQueue(path: path, configuration: configuration)
        let copy = try DatabaseQueue(path: partial)
        do {
            try source.backup(to: copy)
            let (check, runs) = try copy.read { db in
                (try String.fetchOne(db, sql: "PRAGMA integrity_check") ?? "", try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM runs") ?? 0)
            }
            guard check == "ok" else { throw WorkflowError(.internalError, "the copy failed its integrity check: \(check)") }
            try copy.close()
            try source.close()
            try FileManager.default.moveItem(atPath: partial, toPath: destination)
            return runs
        } catch {
            try? copy.close()
            try? FileManager.default.removeItem(atPath: partial)
            throw error
        }
    }

    /// Puts a backup in place of the database at `path` (the server must be stopped). The database it replaces is
    /// kept beside it as `<path>.before-restore-<time>`. Returns the number of runs restored.
    public static func restore(from backup: String, to path: String) throws -> Int {
        guard FileManager.default.fileExists(atPath: backup) else { throw WorkflowError(.notFound, "no backup at \(backup)") }
        let runs = try DatabaseQueue(
            path: backup,
            configuration: {
                var c = Configuration()
                c.readonly = true
                return c
            }()
        ).read { db in
            guard try String.fetchOne(db, sql: "PRAGMA integrity_check") == "ok" else {
                throw WorkflowError(.invalidRequest, "\(backup) fails SQLite's integrity check; it is not restored")
            }
            guard try Bool.fetchOne(db, sql: "SELECT COUNT(*) > 0 FROM sqlite_master WHERE name = 'runs'") == true else {
                throw WorkflowError(.invalidRequest, "\(backup) is not a uwf database")
            }
            return try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM runs") ?? 0
        }
        let fm = FileManager.default
        try fm.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        if fm.fileExists(atPath: path) {
            let stamp = Int(Date().timeIntervalSince1970)
            for suffix in ["", "-wal", "-shm"] where fm.fileExists(atPath: path + suffix) {
                try fm.moveItem(atPath: path + suffix, toPath: "\(path).before-restore-\(stamp)\(suffix)")
            }
        }
        try fm.copyItem(atPath: backup, toPath: path + ".partial")
        try fm.moveItem(atPath: path + ".partial", toPath: path)
        return runs
    }
}
