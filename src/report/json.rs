//! `results.json`: every case with its verdict, stages and timings, for machines.
