// CSV text of a table, byte for byte what pandas' DataFrame.to_csv(index=False) writes for the
// column kinds below (the Python side, totowalk/backtest/report/csv_text.py, decides which columns
// qualify and leaves every other table to pandas).
//
// pandas formats a float cell through numpy's repr (the shortest decimal that reads back to the
// same float), then the csv module joins and quotes the cells, one Python object at a time. Here
// std::to_chars gives the same shortest digits, laid out as numpy lays them out, straight into the
// text.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace totowalk {

enum class CsvKind {
  Float64,  // numpy float64: shortest digits, NaN -> "" (na_rep), +-inf -> "inf", "-inf"
  Float32,  // numpy float32: float32's own shortest digits
  Int64,
  Bool,     // uint8 0/1 -> "False", "True"
  Date,     // int64 days since 1970-01-01, INT64_MIN (NaT) -> ""; years 1000-9999: "YYYY-MM-DD"
  Codes,    // int64 codes into `labels` (each already quoted as the csv module quotes it), -1 -> ""
  Lists,    // JSON text of a list of numbers per cell (json.dumps), quoted as the csv module does
};

// One element of a Lists column: a float, an int, or (a whole cell) JSON null.
struct CsvListItem {
  double number;
  int64_t integer;
  bool is_integer;
};

// Where numpy writes a float positionally: lower <= |x| < upper (1e-4 and 1e16 for float64; numpy
// 2.3 moved float32's upper bound to 1e6, so the caller reads both from the numpy it runs with).
struct CsvFloatLayout {
  double lower;
  double upper;
};

struct CsvColumn {
  CsvKind kind;
  CsvFloatLayout layout{1e-4, 1e16};  // Float64/Float32
  const void* data = nullptr;       // Float64/Float32/Int64/Bool/Date/Codes: one value a row
  std::vector<std::string> labels;  // Codes: each code's cell text, written as it is
  std::vector<int64_t> offsets;     // Lists: cell r holds items[offsets[r], offsets[r + 1])
  std::vector<uint8_t> null_cell;   // Lists: 1 where the cell is None (JSON "null")
  std::vector<CsvListItem> items;   // Lists: every cell's items, in order
};

// Whether std::to_chars formats floating point on this build (else the module leaves CSV to pandas).
bool csv_text_available();

// Rows [0, rows) of `columns`, each row's cells joined by ',' and ended by '\n', as consecutive
// blocks of rows formatted on up to `threads` threads (<= 0: default_pack_threads()).
std::vector<std::string> csv_rows(const std::vector<CsvColumn>& columns, int64_t rows, int threads);

}  // namespace totowalk
