// Package datagen generates test records for Kinesis, like the Amazon
// Kinesis Data Generator (KDG), and writes them to a stream.
//
// It has two parts:
//
//   - [Parse] compiles a record template in the KDG's syntax, literal text
//     with faker.js-style placeholders such as {{random.number(100)}},
//     {{name.firstName}} or {{date.now("YYYY-MM-DD HH:mm:ss")}}, into a
//     [Template]. All checking happens in Parse: an unknown helper or a
//     bad argument is a [*ParseError] naming the position, the helper and
//     the forms it accepts. [Template.Execute] then renders records with no
//     parsing, regular expressions or reflection, from a caller's
//     *rand.Rand, so a seeded generator gives the same records every run.
//     The helpers use small built-in word lists, not faker's locale data.
//   - [Produce] writes rendered records to a stream with PutRecords:
//     batches of at most 500 records and 5 MiB, paced to a rate, entries a
//     request could not write retried alone with backoff, stopping after a
//     count, a duration or on request. `shardflow produce` and
//     `shardflow demo` use it.
//
// docs/produce.md lists every helper with examples.
package datagen
