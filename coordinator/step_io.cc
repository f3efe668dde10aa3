#include "coordinator/step_io.h"

#include "spdlog/spdlog.h"

namespace miroir::coordinator {

void LogStepOutput(const StepOutput& out, const absl::Status& commit, std::string_view runner) {
  if (!commit.ok()) {
    spdlog::error("{}: {} ({} step lines not committed)", runner, std::string(commit.message()),
                  out.log.size());
    return;
  }
  for (const StepLogLine& line : out.log) {
    switch (line.level) {
      case StepLogLine::Level::kInfo:
        spdlog::info("{}", line.text);
        break;
      case StepLogLine::Level::kWarn:
        spdlog::warn("{}", line.text);
        break;
      case StepLogLine::Level::kError:
        spdlog::error("{}", line.text);
        break;
    }
  }
}

}  // namespace miroir::coordinator
