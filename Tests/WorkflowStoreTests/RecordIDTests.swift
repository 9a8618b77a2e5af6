import Foundation
import Testing
import WorkflowStore

@Suite struct RecordIDTests {
    @Test func idsAreRecognisedAndSortByTime() {
        let earlier = RecordID.make(now: Date(timeIntervalSince1970: 1_800_000_000))
        let later = RecordID.make(now: Date(timeIntervalSince1970: 1_800_000_001))
        #expect(RecordID.looksLikeID(earlier) && RecordID.looksLikeID(later))
        #expect(earlier < later)
        for name in ["greet", "customer-onboarding", "01a1fdd1-a038-727c-9081-AB1C6B355EED", ""] { #expect(!RecordID.looksLikeID(name)) }
    }
}
