// Checks KQL queries with Microsoft's own Kusto.Language (compiled to JavaScript).
// Input (stdin): {"database": {"Table": "(Col:type, ...)"}, "queries": ["...", ...]}
// Output (stdout): [{"diagnostics": [{"severity", "code", "message", "start", "length"}],
//                    "columns": [{"name", "type"}], "strings": ["..."]}, ...] in query order;
// `columns` is the result schema, `strings` the values of the string literals as parsed.
// On any failure: one short line on stderr and exit code 1 (the bridge's own errors would
// otherwise print megabytes of minified source).
"use strict";
const path = require("path");

function fail(message) {
  process.stderr.write(`check.js: ${String(message).split("\n")[0].slice(0, 300)}\n`);
  process.exit(1);
}

function load() {
  const dir = path.join(__dirname, "..", "..", "node_modules", "@kusto", "language-service-next");
  require(path.join(dir, "bridge.min.js"));
  require(path.join(dir, "Kusto.Language.Bridge.min.js"));
  return Kusto.Language;
}

// The database the queries run against. Bridge.NET keeps the C# overloads apart by name:
//   DatabaseSymbol.ctor(name, Symbol[])                         <- used here
//   DatabaseSymbol.$ctor1(name, IEnumerable<Symbol>, isOpen)
//   DatabaseSymbol.$ctor2(name, alternateName, Symbol[])
//   DatabaseSymbol.$ctor3(name, alternateName, IEnumerable<Symbol>, isOpen)
// so $ctor2(name, [tables]) takes the tables for the alternate name (0 members) and
// $ctor3(name, list, false) takes `false` for the members ("Cannot create Enumerator").
function globalsFor(K, schemas) {
  const tables = Object.entries(schemas).map(([name, schema]) => {
    const table = new K.Symbols.TableSymbol.$ctor7(name, schema, null);
    // The schema parser is lenient: an unknown type becomes `unknown`, a duplicate is dropped.
    for (const column of Bridge.toArray(table.Columns)) {
      if (column.Type === K.Symbols.ScalarTypes.Unknown) {
        throw new Error(`${name}.${column.Name}: unknown type in ${schema}`);
      }
    }
    return table;
  });
  const database = new K.Symbols.DatabaseSymbol.ctor("workspace", tables);
  if (Bridge.toArray(database.Tables).length !== tables.length) {
    throw new Error("the database did not keep the declared tables");
  }
  return K.GlobalState.Default.WithDatabase(database);
}

function check(K, globals, query) {
  const code = K.KustoCode.ParseAndAnalyze(query, globals);
  const diagnostics = Bridge.toArray(code.GetDiagnostics()).map((d) => ({
    severity: d.Severity,
    code: d.Code,
    message: d.Message,
    start: d.Start,
    length: d.Length,
  }));
  const result = code.ResultType;
  const columns =
    result && result.Columns
      ? Bridge.toArray(result.Columns).map((c) => ({ name: c.Name, type: c.Type.Name }))
      : [];
  const strings = [];
  code.Syntax.WalkNodes((node) => {
    if (node.IsLiteral && node.ResultType === K.Symbols.ScalarTypes.String) {
      strings.push(node.LiteralValue);
    }
  });
  return { diagnostics, columns, strings };
}

try {
  const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
  const K = load();
  const globals = globalsFor(K, input.database);
  const results = input.queries.map((query) => check(K, globals, query));
  process.stdout.write(JSON.stringify(results));
} catch (e) {
  fail(e && (e.message || e.Message) ? e.message || e.Message : e);
}
