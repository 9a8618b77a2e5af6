import Foundation
import Testing
import WorkflowPrimitive

@Suite struct JSONCodecTests {
    @Test(arguments: [
        #"{"a":[1,2.5,-3,1e3,true,false,null],"b":{"c":"d"},"e":""}"#,
        #"[]"#, #"{}"#, #""plain""#, #"0"#, #"-0.5"#, #"12345678901"#,
        #"{"esc":"quote \" backslash \\ slash / tab \t newline \n cr \r bs \b ff \f"}"#,
        #"{"unicode":"é ü 中文 😀","escaped":"\u00e9\u4e2d\ud83d\ude00"}"#,
        #"  { "spaced" :  [ 1 , 2 ]  }  "#,
    ])
    func agreesWithFoundation(_ text: String) throws {
        let ours = try JSONValue.parse(text)
        let foundation = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        #expect(ours == foundation)
        // What we write reads back the same.
        #expect(try JSONValue.parse(ours.canonicalString()) == ours)
    }

    @Test func writesCanonicalJSON() {
        let value: JSONValue = ["b": [1, 2.5, nil], "a": ["z": true, "y": "x\"\n\u{01}/é"], "n": 1e21, "i": -42]
        #expect(value.canonicalString() == #"{"a":{"y":"x\"\n\u0001/é","z":true},"b":[1,2.5,null],"i":-42,"n":1e+21}"#)
        #expect(JSONValue.number(.nan).canonicalString() == "null")
        #expect(JSONValue.number(0.1).canonicalString() == "0.1")
    }

    @Test(arguments: [
        ("{\"a\": }", "unexpected character '}' at line 1, column 7"),
        ("[1, 2", "unexpected end of input in an array at line 1, column 6"),
        ("{\"a\":1,\n \"b\" 2}", "expected ':' after a key at line 2, column 6"),
        ("[01]", "numbers must not have leading zeros at line 1, column 4"),
        ("\"abc", "unterminated string at line 1, column 5"),
        ("tru", "invalid literal, expected 'true' at line 1, column 4"),
        ("[1] x", "unexpected data after the JSON value at line 1, column 5"),
        ("\"\\ud83d\"", "unpaired surrogate in \\u escape at line 1, column 8"),
        ("\"a\u{01}\"", "control characters must be escaped in strings at line 1, column 3"),
        ("", "unexpected end of input at line 1, column 1"),
    ])
    func reportsWhereJSONIsMalformed(_ text: String, _ message: String) {
        #expect(throws: JSONSyntaxError.self) { try JSONValue.parse(text) }
        do {
            _ = try JSONValue.parse(text)
        } catch {
            #expect(error.description == message)
        }
    }

    @Test func refusesHostileNesting() {
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect(throws: JSONSyntaxError.self) { try JSONValue.parse(deep) }
        let fine = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect((try? JSONValue.parse(fine)) != nil)
    }
}
