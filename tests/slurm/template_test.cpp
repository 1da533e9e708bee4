// Batch-script rendering: placeholder syntax, every placeholder of the built-in templates,
// user templates, and the checks on what `scaletune submit` asks for.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>

#include "orchestrator/slurm/job.h"
#include "orchestrator/slurm/submit.h"
#include "orchestrator/slurm/template.h"
#include "tests/support/process.h"

namespace scaletune::slurm {
namespace {

std::string error_of(const std::string& text, const Values& values) {
  try {
    render_template(text, values, "t.sbatch");
  } catch (const TemplateError& e) {
    return e.what();
  }
  return "";
}

JobSpec example_spec() {
  JobSpec s;
  s.job_name = "scaletune-demo";
  s.nodes = 4;
  s.tasks_per_node = 1;
  s.gpus_per_node = 8;
  s.cpus_per_task = 32;
  s.time = "04:00:00";
  s.partition = "gpu";
  s.account = "ml-team";
  s.qos = "high";
  s.sbatch_args = {"--constraint=a100", "--exclusive"};
  s.scaletune = "/opt/scaletune/bin/scaletune";
  s.config = "/home/u/sweep.yaml";
  s.records = "/scratch/u/demo/records.h5";
  s.run_dir = "/scratch/u/demo";
  s.workdir = "/home/u/project";
  s.sweep_args = {"--set", "budget.max_trials=50"};
  s.total_trials = 50;
  return s;
}

TEST(Template, ReplacesPlaceholdersAndKeepsShellSyntax) {
  const std::string out =
      render_template("#SBATCH --nodes={{nodes}}\necho ${HOME} $(date) {x}\n{{a}}{{a}}",
                      {{"nodes", "3"}, {"a", "z"}}, "t");
  EXPECT_EQ(out, "#SBATCH --nodes=3\necho ${HOME} $(date) {x}\nzz");
}

TEST(Template, GuardKeepsLineOnlyWhenValueIsSet) {
  const Values v = {{"partition", "gpu"}, {"qos", ""}, {"gpus", "0"}};
  EXPECT_EQ(
      render_template("a\n{{?partition}}#SBATCH -p {{partition}}\n{{?qos}}#SBATCH --qos={{qos}}\n"
                      "{{?gpus}}#SBATCH --gres=gpu:{{gpus}}\nb\n",
                      v, "t"),
      "a\n#SBATCH -p gpu\nb\n");
}

TEST(Template, UnknownPlaceholderNamesLineAndSuggests) {
  const std::string e = error_of("x\n#SBATCH --nodes={{nodez}}\n", {{"nodes", "1"}});
  EXPECT_NE(e.find("t.sbatch:2: unknown placeholder {{nodez}}; did you mean {{nodes}}?"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("(known: nodes)"), std::string::npos) << e;
}

TEST(Template, UnknownPlaceholderOnADroppedLineIsStillAnError) {
  // A typo must fail at submission even when the line would have been dropped.
  const std::string e = error_of("{{?qos}}#SBATCH --qos={{qoss}}\n", {{"qos", ""}});
  EXPECT_NE(e.find("unknown placeholder {{qoss}}"), std::string::npos) << e;
}

TEST(Template, MalformedPlaceholdersAreErrors) {
  EXPECT_NE(error_of("a {{nodes\n", {{"nodes", "1"}}).find("t.sbatch:1: unterminated '{{'"),
            std::string::npos);
  EXPECT_NE(error_of("{{Nodes}}", {{"nodes", "1"}}).find("bad placeholder '{{Nodes}}'"),
            std::string::npos);
  EXPECT_NE(error_of("{{}}", {}).find("bad placeholder"), std::string::npos);
  EXPECT_NE(error_of("x {{?nodes}}y", {{"nodes", "1"}}).find("must start the line"),
            std::string::npos);
}

// Every placeholder value appears in both built-in templates where it belongs, and no
// placeholder syntax is left over.
TEST(Template, BuiltinTemplatesUseEveryPlaceholder) {
  for (const Mode mode : {Mode::kAllocation, Mode::kArray}) {
    JobSpec s = example_spec();
    s.mode = mode;
    const std::string script = render_script(s);
    SCOPED_TRACE(to_string(mode));
    EXPECT_EQ(script.rfind("#!/bin/bash\n", 0), 0u);
    EXPECT_EQ(script.find("{{"), std::string::npos);
    for (const char* line : {"#SBATCH --job-name=scaletune-demo\n",
                             "#SBATCH --nodes=4\n",
                             "#SBATCH --ntasks-per-node=1\n",
                             "#SBATCH --gres=gpu:8\n",
                             "#SBATCH --cpus-per-task=32\n",
                             "#SBATCH --time=04:00:00\n",
                             "#SBATCH --partition=gpu\n",
                             "#SBATCH --account=ml-team\n",
                             "#SBATCH --qos=high\n",
                             "#SBATCH --constraint=a100\n#SBATCH --exclusive\n",
                             "#SBATCH --signal=B:USR2@120\n",
                             "#SBATCH --requeue\n",
                             "#SBATCH --chdir=/home/u/project\n",
                             "#SBATCH --open-mode=append\n",
                             "scaletune=/opt/scaletune/bin/scaletune\n",
                             "config=/home/u/sweep.yaml\n",
                             "records=/scratch/u/demo/records.h5\n",
                             "stopped_code=4\n",
                             "max_requeues=20\n",
                             "launch=(srun --mpi=pmix --ntasks-per-node=1 ",
                             "--set budget.max_trials=50 ",
                             "trap forward_stop USR2\n",
                             "kill -USR2 \"$pid\"",
                             "stop_target() { scontrol listpids"}) {
      EXPECT_NE(script.find(line), std::string::npos) << line << "\n" << script;
    }
    EXPECT_EQ(script.find("launch=(mpirun"), std::string::npos);
    if (mode == Mode::kAllocation) {
      EXPECT_NE(script.find("#SBATCH --output=/scratch/u/demo/slurm-%j.out\n"), std::string::npos);
      EXPECT_EQ(script.find("--array"), std::string::npos);
    } else {
      EXPECT_NE(script.find("#SBATCH --output=/scratch/u/demo/slurm-%A_%a.out\n"),
                std::string::npos);
      EXPECT_NE(script.find("#SBATCH --array=0-49%1\n"), std::string::npos);
      EXPECT_NE(script.find("target=$(( (element + 1) * 1 ))\n"), std::string::npos);
      // The element's own trial target comes last, so a --set of the user cannot override it.
      EXPECT_NE(script.find("--set budget.max_trials=50 --set budget.max_trials=\"$target\" &\n"),
                std::string::npos);
      EXPECT_NE(script.find("if [ \"$target\" -gt 50 ]; then target=50; fi\n"), std::string::npos);
    }
  }
}

TEST(Template, OptionalLinesDropWhenUnset) {
  JobSpec s = example_spec();
  s.gpus_per_node = 0;
  s.cpus_per_task = 0;
  s.time = s.partition = s.account = s.qos = "";
  s.sbatch_args.clear();
  s.launcher = "mpirun";
  const std::string script = render_script(s);
  for (const char* gone : {"--gres", "--cpus-per-task=", "--time", "--partition", "--account",
                           "--qos", "--constraint", "launch=(srun"})
    EXPECT_EQ(script.find(gone), std::string::npos) << gone;
  EXPECT_NE(script.find("launch=(mpirun --map-by ppr:1:node --bind-to none)\n"), std::string::npos);
  EXPECT_NE(script.find("stop_target() { echo \"$step\"; }\n"), std::string::npos);
}

TEST(Template, ArrayElementsCoverAllTrials) {
  JobSpec s = example_spec();
  s.mode = Mode::kArray;
  s.total_trials = 7;
  s.trials_per_job = 3;
  const Values v = placeholder_values(s);
  EXPECT_EQ(v.at("array_last"), "2");  // elements 0,1,2 add trials 1-3, 4-6, 7
  EXPECT_EQ(v.at("trials_per_job"), "3");
}

// The script is valid bash: `bash -n` parses it.
TEST(Template, BuiltinScriptsParseAsBash) {
  for (const Mode mode : {Mode::kAllocation, Mode::kArray}) {
    JobSpec s = example_spec();
    s.mode = mode;
    const std::string dir = test::temp_dir(std::string("slurm_parse_") + to_string(mode));
    std::ofstream(dir + "/job.sbatch") << render_script(s);
    const auto r = test::run_command("bash -n " + dir + "/job.sbatch");
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
}

TEST(Template, UserTemplateOverridesBuiltin) {
  const std::string dir = test::temp_dir("slurm_user_template");
  std::ofstream(dir + "/mine.sbatch")
      << "#!/bin/bash\n#SBATCH --nodes={{nodes}}\n{{?partition}}#SBATCH -p {{partition}}\n"
         "srun {{scaletune}} sweep --config {{config}} --records {{records}}\n";
  const std::string script = render_script(example_spec(), dir + "/mine.sbatch");
  EXPECT_EQ(script,
            "#!/bin/bash\n#SBATCH --nodes=4\n#SBATCH -p gpu\nsrun /opt/scaletune/bin/scaletune "
            "sweep --config /home/u/sweep.yaml --records /scratch/u/demo/records.h5\n");

  std::ofstream(dir + "/typo.sbatch") << "#!/bin/bash\n\n#SBATCH --gres=gpu:{{gpus}}\n";
  try {
    render_script(example_spec(), dir + "/typo.sbatch");
    FAIL() << "a typo in a user template must be an error";
  } catch (const TemplateError& e) {
    EXPECT_NE(std::string(e.what()).find(dir + "/typo.sbatch:3: unknown placeholder {{gpus}}"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(render_script(example_spec(), dir + "/missing.sbatch"), std::runtime_error);
}

TEST(JobSpec, ExampleIsValid) { EXPECT_TRUE(validate(example_spec()).empty()); }

TEST(JobSpec, ProblemsNameTheFlag) {
  JobSpec s = example_spec();
  s.nodes = 0;
  s.time = "4 hours";
  s.partition = "gpu; rm -rf /";
  s.records = "relative/records.h5";
  s.sbatch_args = {"constraint=a100"};
  s.signal = "USR1";
  const auto problems = validate(s);
  std::string all;
  for (const auto& p : problems) all += p + "\n";
  for (const char* expected :
       {"--nodes must be at least 1", "--time '4 hours' is not a Slurm time limit",
        "--partition 'gpu; rm -rf /' has characters",
        "--records path 'relative/records.h5' must "
        "be an absolute path",
        "--sbatch-arg 'constraint=a100' must be one sbatch option", "must not be SIGUSR1"})
    EXPECT_NE(all.find(expected), std::string::npos) << expected << "\n" << all;
}

TEST(JobSpec, TimeMustLeaveRoomForTheWarning) {
  JobSpec s = example_spec();
  s.time = "00:01:30";  // 90 s, warning 120 s before the end
  ASSERT_EQ(validate(s).size(), 1u);
  EXPECT_NE(validate(s)[0].find("leaves no time to run"), std::string::npos);
}

TEST(JobSpec, ArrayModeNeedsTrialCount) {
  JobSpec s = example_spec();
  s.mode = Mode::kArray;
  s.total_trials = 0;
  ASSERT_EQ(validate(s).size(), 1u);
  EXPECT_NE(validate(s)[0].find("budget.max_trials"), std::string::npos);
}

TEST(JobSpec, TimeLimitFormats) {
  EXPECT_EQ(parse_time_limit("30"), 1800);
  EXPECT_EQ(parse_time_limit("30:15"), 1815);
  EXPECT_EQ(parse_time_limit("04:00:00"), 14400);
  EXPECT_EQ(parse_time_limit("2-00"), 172800);
  EXPECT_EQ(parse_time_limit("1-02:03"), 93780);
  EXPECT_EQ(parse_time_limit("1-02:03:04"), 93784);
  for (const char* bad : {"", "4h", "1:2:3:4", "-5", "1-", "10:", "1--2"})
    EXPECT_EQ(parse_time_limit(bad), -1) << bad;
}

TEST(Sbatch, ParsesParsableOutput) {
  auto s = parse_sbatch_output("1234\n");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->job_id, "1234");
  EXPECT_EQ(s->cluster, "");
  s = parse_sbatch_output("sbatch: warning: something\n987;west\n");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->job_id, "987");
  EXPECT_EQ(s->cluster, "west");
  EXPECT_FALSE(parse_sbatch_output("Submitted batch job\n"));
  EXPECT_FALSE(parse_sbatch_output(""));
}

}  // namespace
}  // namespace scaletune::slurm
