#include "csv_text.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include "pack.h"
#include "parallel.h"

#if defined(__cpp_lib_to_chars) || (defined(_GLIBCXX_RELEASE) && _GLIBCXX_RELEASE >= 11) || \
    (defined(_LIBCPP_VERSION) && _LIBCPP_VERSION >= 14000)
#define TOTOWALK_FLOAT_TO_CHARS 1
#else
#define TOTOWALK_FLOAT_TO_CHARS 0
#endif

namespace totowalk {
namespace {

void append_integer(std::string& out, int64_t value) {
  char buf[24];
  const auto end = std::to_chars(buf, buf + sizeof(buf), value).ptr;
  out.append(buf, end);
}

// A finite float in numpy's layout (for float64 also Python's repr): the shortest digits that
// read back to the same float; positional for lower <= |x| < upper (numpy compares the value, so a
// float32 just below 1e-4 whose digits round to "1" is still written "1e-04"), else d.ddde+XX with
// at least two exponent digits.
void append_finite(std::string& out, double value, bool float32, const CsvFloatLayout& layout) {
#if TOTOWALK_FLOAT_TO_CHARS
  char buf[48];
  const char* end = float32 ? std::to_chars(buf, buf + sizeof(buf), static_cast<float>(value),
                                            std::chars_format::scientific).ptr
                            : std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::scientific).ptr;
  const char* p = buf;
  if (*p == '-') {
    out += '-';
    ++p;
  }
  char digits[32];
  int count = 0;
  for (; p < end && *p != 'e'; ++p) {
    if (*p != '.') digits[count++] = *p;
  }
  int exponent = 0;  // "e-05" -> -5
  std::from_chars(p + (p[1] == '+' ? 2 : 1), end, exponent);
  const double magnitude = std::fabs(value);
  if (magnitude == 0.0 || (magnitude >= layout.lower && magnitude < layout.upper)) {
    const int point = exponent + 1;  // digits before the decimal point
    if (point <= 0) {
      out += "0.";
      out.append(static_cast<size_t>(-point), '0');
      out.append(digits, static_cast<size_t>(count));
    } else if (point >= count) {
      out.append(digits, static_cast<size_t>(count));
      out.append(static_cast<size_t>(point - count), '0');
      out += ".0";
    } else {
      out.append(digits, static_cast<size_t>(point));
      out += '.';
      out.append(digits + point, static_cast<size_t>(count - point));
    }
    return;
  }
  out += digits[0];
  if (count > 1) {
    out += '.';
    out.append(digits + 1, static_cast<size_t>(count - 1));
  }
  out += exponent < 0 ? "e-" : "e+";
  const int shown = std::abs(exponent);
  if (shown < 10) out += '0';
  append_integer(out, shown);
#else
  (void)out, (void)value, (void)float32, (void)layout;
#endif
}

// A table cell: NaN is the missing value (pandas' na_rep, ""); infinities as numpy prints them.
void append_cell_float(std::string& out, double value, bool float32, const CsvFloatLayout& layout) {
  if (std::isnan(value)) return;
  if (std::isinf(value)) {
    out += value < 0 ? "-inf" : "inf";
    return;
  }
  append_finite(out, value, float32, layout);
}

// A number inside JSON text, as json.dumps writes a Python float (its repr) or int.
constexpr CsvFloatLayout python_repr{1e-4, 1e16};

void append_json_item(std::string& out, const CsvListItem& item) {
  if (item.is_integer) {
    append_integer(out, item.integer);
  } else if (std::isnan(item.number)) {
    out += "NaN";
  } else if (std::isinf(item.number)) {
    out += item.number < 0 ? "-Infinity" : "Infinity";
  } else {
    append_finite(out, item.number, false, python_repr);
  }
}

// Proleptic Gregorian date of a day count since 1970-01-01 (eras of 400 years, March-based years,
// so the leap day ends a year).
void append_date(std::string& out, int64_t days) {
  const int64_t shifted = days + 719468;  // days since 0000-03-01
  const int64_t era = (shifted >= 0 ? shifted : shifted - 146096) / 146097;
  const int64_t day_of_era = shifted - era * 146097;
  const int64_t year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
  const int64_t day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  const int64_t month_index = (5 * day_of_year + 2) / 153;  // 0 = March
  const int64_t day = day_of_year - (153 * month_index + 2) / 5 + 1;
  const int64_t month = month_index < 10 ? month_index + 3 : month_index - 9;
  const int64_t year = year_of_era + era * 400 + (month <= 2 ? 1 : 0);
  char buf[11] = {static_cast<char>('0' + year / 1000 % 10), static_cast<char>('0' + year / 100 % 10),
                  static_cast<char>('0' + year / 10 % 10),   static_cast<char>('0' + year % 10),
                  '-',
                  static_cast<char>('0' + month / 10),       static_cast<char>('0' + month % 10),
                  '-',
                  static_cast<char>('0' + day / 10),         static_cast<char>('0' + day % 10)};
  out.append(buf, 10);
}

void append_list(std::string& out, const CsvColumn& column, int64_t row) {
  if (column.null_cell[static_cast<size_t>(row)]) {
    out += "null";
    return;
  }
  const int64_t begin = column.offsets[static_cast<size_t>(row)];
  const int64_t end = column.offsets[static_cast<size_t>(row) + 1];
  const bool quote = end - begin > 1;  // ", " between items: the only delimiter JSON numbers hold
  if (quote) out += '"';
  out += '[';
  for (int64_t i = begin; i < end; ++i) {
    if (i > begin) out += ", ";
    append_json_item(out, column.items[static_cast<size_t>(i)]);
  }
  out += ']';
  if (quote) out += '"';
}

void append_cell(std::string& out, const CsvColumn& column, int64_t row) {
  switch (column.kind) {
    case CsvKind::Float64:
      append_cell_float(out, static_cast<const double*>(column.data)[row], false, column.layout);
      break;
    case CsvKind::Float32:
      append_cell_float(out, static_cast<const float*>(column.data)[row], true, column.layout);
      break;
    case CsvKind::Int64:
      append_integer(out, static_cast<const int64_t*>(column.data)[row]);
      break;
    case CsvKind::Bool:
      out += static_cast<const uint8_t*>(column.data)[row] ? "True" : "False";
      break;
    case CsvKind::Date: {
      const int64_t days = static_cast<const int64_t*>(column.data)[row];
      if (days != INT64_MIN) append_date(out, days);
      break;
    }
    case CsvKind::Codes: {
      const int64_t code = static_cast<const int64_t*>(column.data)[row];
      if (code >= 0) out += column.labels[static_cast<size_t>(code)];
      break;
    }
    case CsvKind::Lists:
      append_list(out, column, row);
      break;
  }
}

}  // namespace

bool csv_text_available() { return TOTOWALK_FLOAT_TO_CHARS != 0; }

std::vector<std::string> csv_rows(const std::vector<CsvColumn>& columns, int64_t rows, int threads) {
  constexpr int64_t kRowsPerThread = 16384;  // below this a thread costs more than it saves
  const int64_t workers = std::clamp<int64_t>(rows / kRowsPerThread, 1, threads > 0 ? threads : default_pack_threads());
  const int64_t per_block = (rows + workers - 1) / std::max<int64_t>(workers, 1);
  std::vector<std::string> blocks(static_cast<size_t>(workers));
  parallel_blocks(workers, workers, [&](int64_t first, int64_t last) {
    for (int64_t block = first; block < last; ++block) {
      std::string& out = blocks[static_cast<size_t>(block)];
      const int64_t begin = block * per_block;
      const int64_t end = std::min(rows, begin + per_block);
      out.reserve(static_cast<size_t>(std::max<int64_t>(end - begin, 0)) * columns.size() * 12);
      for (int64_t row = begin; row < end; ++row) {
        for (size_t c = 0; c < columns.size(); ++c) {
          if (c > 0) out += ',';
          append_cell(out, columns[c], row);
        }
        out += '\n';
      }
    }
  });
  return blocks;
}

}  // namespace totowalk
