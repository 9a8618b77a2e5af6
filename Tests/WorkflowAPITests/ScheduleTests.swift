import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing
import WorkflowPrimitive

/// Schedules over the real HTTP stack on both drivers: the API, firing on time, exactly once per fire time, and the
/// overlap and missed-run policies.
@Suite struct ScheduleTests {
    static let tick = #"{"name": "tick", "version": "1.0.0", "definition": {"steps": [{"id": "a", "type": "noop"}]}}"#
    static let waiter =
        #"{"name": "waiter", "version": "1.0.0", "definition": {"steps": [{"id": "w", "type": "wait_for_signal", "config": {"signal": "go"}}]}}"#

    static func ms(_ text: String?) -> Int64 { text.flatMap(ScheduleTime.parse) ?? -1 }

    /// Polls until `check` holds of the schedule (or a deadline passes), and returns the schedule as last read.
    static func waitFor(
        _ api: any TestClientProtocol,
        _ id: String,
        timeout: Duration = .seconds(15),
        _ check: (JSONValue) -> Bool
    ) async throws
        -> JSONValue
    {
        let deadline = ContinuousClock.now + timeout
        while true {
            let schedule = try await api.call(.get, "/api/v1/schedules/\(id)").json
            if check(schedule) || ContinuousClock.now > deadline { return schedule }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    @Test(arguments: APIDriver.all) func schedulesAreCreatedReadChangedAndDeleted(_ driver: APIDriver) async throws {
        try await withAPI(driver, leaderServices: true) { api in
            #expect(try await api.call(.post, "/api/v1/workflows", Self.tick).status == .created)
            // Invalid: every problem at its pointer.
            let bad = try await api.call(.post, "/api/v1/schedules", #"{"id": "x", "workflow": "tick", "cron": "61 * * * *", "overlap": "often"}"#)
            #expect(bad.status == .unprocessableContent && bad.json["code"] == "invalid_request")
            let pointers = Set(bad.json["errors"]?.arrayValue?.compactMap { $0["pointer"]?.stringValue } ?? [])
            #expect(pointers == ["/cron", "/overlap"], "\(bad.json)")
            let sixFields = try await api.call(.post, "/api/v1/schedules", #"{"id": "x", "workflow": "tick", "cron": "0 */5 * * * *"}"#)
            #expect(sixFields.status == .unprocessableContent && sixFields.json.canonicalString().contains("seconds"))
            let unknown = try await api.call(.post, "/api/v1/schedules", #"{"id": "x", "workflow": "nope", "cron": "* * * * *"}"#)
            #expect(unknown.status == .notFound && unknown.json["code"] == "workflow_not_found")
            let past = try await api.call(.post, "/api/v1/schedules", #"{"id": "x", "workflow": "tick", "at": "2020-01-01T00:00:00Z"}"#)
            #expect(past.status == .unprocessableContent)

            let body = #"{"id": "eod", "workflow": "tick", "cron": "30 1 * * *", "time_zone": "Europe/London", "dst_repeated": "both", "note": "n"}"#
            let created = try await api.call(.post, "/api/v1/schedules", body)
            #expect(created.status == .created && created.headers[.location] == "/api/v1/schedules/eod")
            #expect(created.json["status"] == "active" && created.json["note"] == "n" && created.json["spec"]?["overlap"] == "skip")
            #expect(created.json["next_fire_local"]?.stringValue?.contains("T01:30:00") == true, "\(created.json)")
            #expect(try await api.call(.post, "/api/v1/schedules", body).json["code"] == "schedule_exists")

            // The DST example of the docs: 01:30 happens twice on 25 October 2026 in London, and "both" runs both.
            let preview = try await api.call(.get, "/api/v1/schedules/eod/preview?count=3&after=2026-10-24T12:00:00Z")
            #expect(
                preview.json["fires"]?.arrayValue?.compactMap { $0["local"]?.stringValue } == [
                    "2026-10-25T01:30:00+01:00", "2026-10-25T01:30:00+00:00", "2026-10-26T01:30:00+00:00",
                ],
                "\(preview.json)"
            )
            let unsaved = try await api.call(
                .post,
                "/api/v1/schedules/preview?count=2",
                #"{"workflow": "any", "interval_seconds": 90, "start_at": "2030-01-01T00:00:00Z"}"#
            )
            #expect(
                unsaved.json["fires"]?.arrayValue?.compactMap { $0["at"]?.stringValue } == ["2030-01-01T00:00:00.000Z", "2030-01-01T00:01:30.000Z"]
            )
            #expect(try await api.call(.get, "/api/v1/schedules/eod/preview?count=1000").status == .unprocessableContent)

            let changed = try await api.call(
                .put,
                "/api/v1/schedules/eod",
                #"{"workflow": "tick", "cron": "0 18 * * MON-FRI", "time_zone": "America/New_York"}"#
            )
            #expect(
                changed.status == .ok && changed.json["revision"] == 2
                    && changed.json["next_fire_local"]?.stringValue?.contains("T18:00:00-0") == true
            )
            #expect(
                try await api.call(.put, "/api/v1/schedules/eod", #"{"id": "other", "workflow": "tick", "cron": "* * * * *"}"#).status
                    == .unprocessableContent
            )
            let paused = try await api.call(.post, "/api/v1/schedules/eod/pause", #"{"note": "bank holiday"}"#)
            #expect(paused.json["status"] == "paused" && paused.json["note"] == "bank holiday")
            #expect(try await api.call(.post, "/api/v1/schedules/eod/pause", #"{"colour": 1}"#).status == .unprocessableContent)
            #expect(try await api.call(.post, "/api/v1/schedules/eod/resume").json["status"] == "active")
            #expect(try await api.call(.get, "/api/v1/schedules").json["schedules"]?.arrayValue?.count == 1)

            // Another tenant sees none of it: 404 as for an id that does not exist.
            #expect(try await api.call(.post, "/api/v1/tenants", #"{"id": "acme", "name": "Acme"}"#).status == .created)
            let (acme, _) = try await AuthorizationTests.createKey(api, roles: ["operator"], tenant: "acme")
            let other = ["Authorization": "Bearer \(acme)"]
            #expect(try await api.call(.get, "/api/v1/schedules/eod", headers: other).json["code"] == "schedule_not_found")
            #expect(try await api.call(.post, "/api/v1/schedules/eod/trigger", headers: other).status == .notFound)
            #expect(try await api.call(.delete, "/api/v1/schedules/eod", headers: other).status == .notFound)
            #expect(try await api.call(.get, "/api/v1/schedules", headers: other).json["schedules"]?.arrayValue?.isEmpty == true)
            #expect(
                try await api.call(.post, "/api/v1/schedules", #"{"id": "eod", "workflow": "tick", "cron": "* * * * *"}"#, headers: other).status
                    == .notFound,
                "the tenant's own workflows only"
            )

            #expect(try await api.call(.delete, "/api/v1/schedules/eod").status == .noContent)
            #expect(try await api.call(.delete, "/api/v1/schedules/eod").status == .notFound)
            let actions = try await api.call(.get, "/api/v1/audit?target=schedule:eod&order=chain").json["entries"]?.arrayValue?
                .compactMap { $0["action"]?.stringValue }
            #expect(actions == ["schedule.create", "schedule.update", "schedule.pause", "schedule.resume", "schedule.delete"], "\(actions ?? [])")
        }
    }

    @Test(arguments: APIDriver.all) func firesStartOneRunPerFireTimeOnTime(_ driver: APIDriver) async throws {
        try await withAPI(driver, leaderServices: true) { api in
            #expect(try await api.call(.post, "/api/v1/workflows", Self.tick).status == .created)
            let created = try await api.call(
                .post,
                "/api/v1/schedules",
                #"{"id": "every", "workflow": "tick", "cron": "* * * * * *", "dialect": "seconds", "overlap": "allow_all"}"#
            )
            #expect(created.status == .created)
            _ = try await Self.waitFor(api, "every") { ($0["fired"]?.numberValue ?? 0) >= 4 }
            #expect(try await api.call(.post, "/api/v1/schedules/every/pause").status == .ok)
            let fires = try await api.call(.get, "/api/v1/schedules/every/runs?limit=100").json["fires"]?.arrayValue ?? []
            #expect(fires.count >= 4)
            let scheduled = fires.map { Self.ms($0["scheduled_at"]?.stringValue) }
            #expect(Set(scheduled).count == scheduled.count && scheduled.allSatisfy { $0 % 1000 == 0 }, "one run per whole second")
            // Never early, and on time within the poll interval when the machine is quiet (~100 ms here; see
            // docs/performance.md). The whole suite runs beside this test on two cores, so the bound is loose: it
            // catches a scheduler that waits for the next fire time, or a minute, not a busy machine.
            let lags = fires.map { Self.ms($0["fired_at"]?.stringValue) - Self.ms($0["scheduled_at"]?.stringValue) }.sorted()
            #expect(lags.allSatisfy { $0 >= 0 } && lags[lags.count / 2] < 5000, "lags \(lags) ms")
            for fire in fires.prefix(2) {
                let runID = try #require(fire["run_id"]?.stringValue)
                let run = try await api.waitForRun(runID)
                #expect(run["status"] == "COMPLETED" && run["created_by"] == "schedule:every", "\(run)")
                let history = try await api.call(.get, "/api/v1/executions/\(runID)/history").json["events"]?.arrayValue ?? []
                let event = history.first { $0["type"] == "schedule_fired" }
                #expect(event?["data"]?["scheduled_at"] == fire["scheduled_at"] && event?["data"]?["schedule_id"] == "every")
            }
            // Backfill: a run per fire time in the range, once; again, the same runs and nothing new.
            let range = #"{"from": "2026-01-01T00:00:00Z", "to": "2026-01-01T00:00:04Z"}"#
            let first = try await api.call(.post, "/api/v1/schedules/every/backfill", range)
            #expect(first.status == .created && first.json["fires"]?.arrayValue?.count == 5)
            let again = try await api.call(.post, "/api/v1/schedules/every/backfill", range)
            #expect(again.status == .ok && again.json["fires"]?.arrayValue?.allSatisfy { $0["created"] == false } == true)
            #expect(again.json["fires"]?.arrayValue?.map { $0["run_id"] } == first.json["fires"]?.arrayValue?.map { $0["run_id"] })
            let huge = try await api.call(
                .post,
                "/api/v1/schedules/every/backfill",
                #"{"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"}"#
            )
            #expect(huge.status == .unprocessableContent)
            #expect(try await api.call(.post, "/api/v1/schedules/every/backfill", #"{"from": "yesterday"}"#).status == .unprocessableContent)
        }
    }

    @Test(arguments: APIDriver.all) func overlapPolicies(_ driver: APIDriver) async throws {
        try await withAPI(driver, leaderServices: true) { api in
            #expect(try await api.call(.post, "/api/v1/workflows", Self.waiter).status == .created)
            for policy in ["skip", "buffer_one", "cancel_other", "allow_all"] {
                let id = policy.replacingOccurrences(of: "_", with: "-")
                let body =
                    #"{"id": "\#(id)", "workflow": "waiter", "interval_seconds": 86400, "start_at": "2099-01-01T00:00:00Z", "overlap": "\#(policy)"}"#
                #expect(try await api.call(.post, "/api/v1/schedules", body).status == .created)
                let first = try await api.call(.post, "/api/v1/schedules/\(id)/trigger")
                let runA = try #require(first.json["run_id"]?.stringValue, "\(first.json)")
                try await Task.sleep(for: .milliseconds(5))
                let second = try await api.call(.post, "/api/v1/schedules/\(id)/trigger")
                switch policy {
                case "skip":
                    #expect(second.status == .ok && second.json["run_id"] == .null && second.json["schedule"]?["skipped_overlap"] == 1)
                case "buffer_one":
                    #expect(second.json["run_id"] == .null && second.json["schedule"]?["buffered_fire_at"]?.stringValue != nil)
                    try await Task.sleep(for: .milliseconds(5))
                    let third = try await api.call(.post, "/api/v1/schedules/\(id)/trigger")
                    #expect(third.json["schedule"]?["skipped_overlap"] == 1, "a newer fire replaces the buffered one")
                    // The buffered fire starts once the run before it finishes.
                    #expect(try await api.call(.post, "/api/v1/executions/\(runA)/signals/go", "{}").status == .accepted)
                    let after = try await Self.waitFor(api, id) { $0["fired"] == 2 }
                    #expect(after["fired"] == 2 && after["buffered_fire_at"] == .null, "\(after)")
                    #expect(after["last_run_id"]?.stringValue != runA)
                case "cancel_other":
                    let runB = try #require(second.json["run_id"]?.stringValue)
                    #expect(try await api.waitForRun(runA)["status"] == "CANCELLED")
                    #expect(try await api.call(.get, "/api/v1/executions/\(runB)").json["status"] == "RUNNING")
                default:
                    let runB = try #require(second.json["run_id"]?.stringValue)
                    #expect(runB != runA)
                }
            }
        }
    }

    @Test(arguments: APIDriver.all) func missedFiresRunByPolicyOnResume(_ driver: APIDriver) async throws {
        try await withAPI(driver, leaderServices: true) { api in
            #expect(try await api.call(.post, "/api/v1/workflows", Self.tick).status == .created)
            for policy in ["skip", "run_once", "run_all"] {
                let id = policy.replacingOccurrences(of: "_", with: "-")
                let body =
                    #"{"id": "\#(id)", "workflow": "tick", "interval_seconds": 1, "missed": "\#(policy)", "max_catch_up_runs": 2, "overlap": "allow_all", "paused": true}"#
                #expect(try await api.call(.post, "/api/v1/schedules", body).status == .created)
            }
            // Paused for a few fire times; each resume then decides what the missed ones become.
            try await Task.sleep(for: .milliseconds(3600))
            for (policy, expected) in [("skip", 0), ("run-once", 1), ("run-all", 2)] {
                let resumed = try await api.call(.post, "/api/v1/schedules/\(policy)/resume")
                #expect(resumed.status == .ok)
                #expect(resumed.json["fired"]?.numberValue.map(Int.init) == expected, "\(policy): \(resumed.json)")
                #expect((resumed.json["skipped_missed"]?.numberValue ?? 0) >= Double(3 - expected), "\(policy): \(resumed.json)")
                _ = try await api.call(.post, "/api/v1/schedules/\(policy)/pause")
            }
        }
    }
}
