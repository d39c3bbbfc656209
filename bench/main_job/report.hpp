#pragma once

/// \file
/// The main job's outputs: a table for the terminal, the results as JSON in
/// Google Benchmark's format, and an SVG bar chart written as plain text.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace main_job {

// ---------------------------------------------------------------------------
// Table
// ---------------------------------------------------------------------------

/// A table printed in Markdown syntax, so that it reads well in a terminal and
/// pastes into a README unchanged.
class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}

  void add_row(std::vector<std::string> cells) {
    cells.resize(header_.size());
    rows_.push_back(std::move(cells));
  }

  void print(std::ostream& out) const {
    std::vector<std::size_t> widths(header_.size(), 0);
    auto widen = [&](const std::vector<std::string>& row) {
      for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], width(row[i]));
    };
    widen(header_);
    for (const auto& row : rows_) widen(row);
    auto print_row = [&](const std::vector<std::string>& row) {
      out << '|';
      for (std::size_t i = 0; i < row.size(); ++i) {
        out << ' ' << row[i] << std::string(widths[i] - width(row[i]), ' ') << " |";
      }
      out << '\n';
    };
    print_row(header_);
    out << '|';
    for (std::size_t w : widths) out << std::string(w + 2, '-') << '|';
    out << '\n';
    for (const auto& row : rows_) print_row(row);
  }

 private:
  /// Display width: counts UTF-8 code points ("µ" is one column, two bytes).
  static std::size_t width(const std::string& text) {
    return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) {
      return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    }));
  }

  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// ---------------------------------------------------------------------------
// JSON, in Google Benchmark's format
// ---------------------------------------------------------------------------

inline std::string json_string(const std::string& text) {
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buffer[8];
          std::snprintf(buffer, sizeof buffer, "\\u%04x", c);
          out += buffer;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

inline std::string json_number(double value) {
  if (!std::isfinite(value)) return "null";
  char buffer[40];
  std::snprintf(buffer, sizeof buffer, "%.10g", value);
  return buffer;
}

/// One measured run, as Google Benchmark writes it: `real_time` and
/// `cpu_time` per iteration in `time_unit`, user counters as extra fields.
struct BenchmarkEntry {
  std::string name;
  std::uint64_t iterations = 0;
  double real_time = 0;
  double cpu_time = 0;
  std::string time_unit = "ns";
  unsigned threads = 1;
  std::string label;
  std::vector<std::pair<std::string, double>> counters;
};

/// A value of the "context" object: text or a number.
struct ContextValue {
  std::string key;
  std::string json;  // already encoded
};

inline void write_json(const std::filesystem::path& file, const std::vector<ContextValue>& context,
                       const std::vector<BenchmarkEntry>& entries) {
  std::ofstream out(file);
  if (!out) throw std::runtime_error("cannot write " + file.string());
  out << "{\n  \"context\": {\n";
  for (std::size_t i = 0; i < context.size(); ++i) {
    out << "    " << json_string(context[i].key) << ": " << context[i].json
        << (i + 1 < context.size() ? ",\n" : "\n");
  }
  out << "  },\n  \"benchmarks\": [\n";
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const BenchmarkEntry& e = entries[i];
    out << "    {\n";
    out << "      \"name\": " << json_string(e.name) << ",\n";
    out << "      \"family_index\": " << i << ",\n";
    out << "      \"per_family_instance_index\": 0,\n";
    out << "      \"run_name\": " << json_string(e.name) << ",\n";
    out << "      \"run_type\": \"iteration\",\n";
    out << "      \"repetitions\": 1,\n";
    out << "      \"repetition_index\": 0,\n";
    out << "      \"threads\": " << e.threads << ",\n";
    out << "      \"iterations\": " << e.iterations << ",\n";
    out << "      \"real_time\": " << json_number(e.real_time) << ",\n";
    out << "      \"cpu_time\": " << json_number(e.cpu_time) << ",\n";
    out << "      \"time_unit\": " << json_string(e.time_unit);
    for (const auto& [key, value] : e.counters) {
      out << ",\n      " << json_string(key) << ": " << json_number(value);
    }
    if (!e.label.empty()) out << ",\n      \"label\": " << json_string(e.label);
    out << "\n    }" << (i + 1 < entries.size() ? ",\n" : "\n");
  }
  out << "  ]\n}\n";
}

// ---------------------------------------------------------------------------
// SVG
// ---------------------------------------------------------------------------

/// One chart: groups along the x axis (the stores), one bar per series in
/// each group (the patterns). `values[group][series]`.
struct BarPanel {
  std::string title;
  std::string unit;
  bool log_scale = false;
  std::vector<std::string> groups;
  std::vector<std::string> series;
  std::vector<std::vector<double>> values;
};

inline std::string svg_escape(const std::string& text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

/// A number with three significant digits at most, without trailing zeros: "979", "23.9", "0.062".
inline std::string short_number(double v) {
  char buffer[32];
  if (std::fabs(v) >= 1000) {
    std::snprintf(buffer, sizeof buffer, "%.0f", v);
  } else {
    std::snprintf(buffer, sizeof buffer, "%.3g", v);
  }
  return buffer;
}

/// Writes `panels` as a grid of bar charts, `columns` per row, with one legend.
inline void write_svg(const std::filesystem::path& file, const std::string& title,
                      const std::vector<BarPanel>& panels, std::size_t columns = 3) {
  constexpr double kPanelWidth = 420;
  constexpr double kPanelHeight = 300;
  constexpr double kTop = 70;
  constexpr const char* kColors[] = {"#d95f02", "#1b9e77", "#7570b3", "#e7298a"};
  const std::size_t rows = (panels.size() + columns - 1) / columns;
  const double width = kPanelWidth * static_cast<double>(columns);
  const double height = kTop + kPanelHeight * static_cast<double>(rows) + 10;

  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
      << "\" viewBox=\"0 0 " << width << ' ' << height
      << "\" font-family=\"sans-serif\" font-size=\"11\">\n";
  svg << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  svg << "<text x=\"" << width / 2 << "\" y=\"24\" text-anchor=\"middle\" font-size=\"16\">"
      << svg_escape(title) << "</text>\n";

  // The legend: the series of every panel, in order of first appearance.
  std::vector<std::string> legend;
  for (const auto& panel : panels) {
    for (const auto& s : panel.series) {
      if (std::find(legend.begin(), legend.end(), s) == legend.end()) legend.push_back(s);
    }
  }
  auto color_of = [&](const std::string& series) {
    const auto i =
        static_cast<std::size_t>(std::find(legend.begin(), legend.end(), series) - legend.begin());
    return kColors[i % std::size(kColors)];
  };
  constexpr double kLegendItem = 160;
  double legend_x = width / 2 - kLegendItem * static_cast<double>(legend.size()) / 2;
  for (const auto& s : legend) {
    svg << "<rect x=\"" << legend_x << "\" y=\"38\" width=\"12\" height=\"12\" fill=\""
        << color_of(s) << "\"/><text x=\"" << legend_x + 16 << "\" y=\"48\">" << svg_escape(s)
        << "</text>\n";
    legend_x += kLegendItem;
  }

  for (std::size_t p = 0; p < panels.size(); ++p) {
    const BarPanel& panel = panels[p];
    const double x0 = kPanelWidth * static_cast<double>(p % columns);
    const double y0 = kTop + kPanelHeight * static_cast<double>(p / columns);
    const double left = x0 + 55;
    const double right = x0 + kPanelWidth - 15;
    const double top = y0 + 30;
    const double bottom = y0 + kPanelHeight - 40;

    double max_value = 0;
    double min_positive = 0;
    for (const auto& group : panel.values) {
      for (const double v : group) {
        max_value = std::max(max_value, v);
        if (v > 0 && (min_positive == 0 || v < min_positive)) min_positive = v;
      }
    }
    // The y axis: linear from 0, or logarithmic over whole decades.
    double low = 0;
    double high = max_value > 0 ? max_value * 1.15 : 1;
    if (panel.log_scale) {
      low = std::pow(10, std::floor(std::log10(min_positive > 0 ? min_positive : 1)));
      high = std::pow(10, std::ceil(std::log10(std::max(max_value * 1.3, low * 10))));
    }
    auto y_of = [&](double v) {
      double fraction;
      if (panel.log_scale) {
        fraction =
            v <= low ? 0 : (std::log10(v) - std::log10(low)) / (std::log10(high) - std::log10(low));
      } else {
        fraction = v / high;
      }
      return bottom - std::clamp(fraction, 0.0, 1.0) * (bottom - top);
    };

    svg << "<text x=\"" << x0 + kPanelWidth / 2 << "\" y=\"" << y0 + 16
        << "\" text-anchor=\"middle\" font-size=\"12\" font-weight=\"bold\">"
        << svg_escape(panel.title) << "</text>\n";
    // Grid lines and tick labels.
    std::vector<double> ticks;
    if (panel.log_scale) {
      for (double t = low; t <= high * 1.001; t *= 10) ticks.push_back(t);
    } else {
      const double step = std::pow(10, std::floor(std::log10(high / 2)));
      const double nice = high / step > 10 ? step * 2 : step;
      for (double t = 0; t <= high; t += nice) ticks.push_back(t);
    }
    for (const double t : ticks) {
      const double y = y_of(t);
      svg << "<line x1=\"" << left << "\" x2=\"" << right << "\" y1=\"" << y << "\" y2=\"" << y
          << "\" stroke=\"#ddd\"/><text x=\"" << left - 4 << "\" y=\"" << y + 4
          << "\" text-anchor=\"end\" fill=\"#555\">" << short_number(t) << "</text>\n";
    }
    svg << "<text transform=\"translate(" << x0 + 12 << ',' << (top + bottom) / 2
        << ") rotate(-90)\" text-anchor=\"middle\" fill=\"#555\">" << svg_escape(panel.unit)
        << (panel.log_scale ? " (log scale)" : "") << "</text>\n";
    svg << "<line x1=\"" << left << "\" x2=\"" << right << "\" y1=\"" << bottom << "\" y2=\""
        << bottom << "\" stroke=\"#333\"/>\n";

    const double group_width = (right - left) / static_cast<double>(panel.groups.size());
    const double bar_width =
        std::min(40.0, group_width * 0.8 / static_cast<double>(panel.series.size()));
    for (std::size_t g = 0; g < panel.groups.size(); ++g) {
      const double group_left = left + group_width * static_cast<double>(g);
      const double bars_left =
          group_left + (group_width - bar_width * static_cast<double>(panel.series.size())) / 2;
      for (std::size_t s = 0; s < panel.series.size(); ++s) {
        const double v = panel.values[g][s];
        const double x = bars_left + bar_width * static_cast<double>(s);
        const double y = y_of(v);
        svg << "<rect x=\"" << x << "\" y=\"" << y << "\" width=\"" << bar_width - 2
            << "\" height=\"" << bottom - y << "\" fill=\"" << color_of(panel.series[s])
            << "\"><title>" << svg_escape(panel.series[s]) << ", " << svg_escape(panel.groups[g])
            << ": " << short_number(v) << ' ' << svg_escape(panel.unit)
            << "</title></rect><text x=\"" << x + (bar_width - 2) / 2 << "\" y=\"" << y - 3
            << "\" text-anchor=\"middle\" font-size=\"9\">" << short_number(v) << "</text>\n";
      }
      svg << "<text x=\"" << group_left + group_width / 2 << "\" y=\"" << bottom + 16
          << "\" text-anchor=\"middle\">" << svg_escape(panel.groups[g]) << "</text>\n";
    }
  }
  svg << "</svg>\n";

  std::ofstream out(file);
  if (!out) throw std::runtime_error("cannot write " + file.string());
  out << svg.str();
}

}  // namespace main_job
