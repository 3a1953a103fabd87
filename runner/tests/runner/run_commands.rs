//! `run`: the commands, their order and their environment.

use crate::helpers::Step;
use serde_json::json;

#[test]
fn prerequisites_run_depth_first_and_once_before_the_action() {
    let step = Step::new(
        "actions:
  build:
    run: echo build >> order.txt
    prerequisites: [lint, fmt]
  lint:
    run: echo lint >> order.txt
    prerequisites: [fmt]
  fmt:
    script: scripts/fmt.sh
",
    );
    step.write("scripts/fmt.sh", "echo fmt >> order.txt\n");

    let run = step.run("build").success();

    assert_eq!(step.read("order.txt"), "fmt\nlint\nbuild\n");
    let stdout = run.stdout();
    let lint = stdout
        .find("===> Running prerequisite \"lint\"")
        .expect("lint phase");
    let build = stdout
        .find("===> Running action \"build\"")
        .expect("build phase");
    assert!(lint < build, "{stdout}");
}

#[test]
fn the_env_properties_and_protocol_variables_are_exported() {
    let step = Step::new("actions:\n  build:\n    run: env > out.txt\n")
        .with_properties(
            json!({"gantry": {"env": {"GREETING": "hello", "GANTRY_ACTION": "fake"}}}),
            json!({"gantry": {"env": {"TARGET": "dev"}}}),
        )
        .with_env(
            "TRACEPARENT",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        );

    step.run("build").success();

    let env = step.read("out.txt");
    let properties_dir = format!(
        "GANTRY_PROPERTIES_DIR={}",
        step.protocol.join("properties").display()
    );
    for expected in [
        "GREETING=hello",
        "TARGET=dev",
        "GANTRY_CHANGE_ID=c1",
        "GANTRY_STEP_ID=s1",
        "GANTRY_ACTION=build",
        "GANTRY_METADATA={\"ticket\":7}",
        properties_dir.as_str(),
        "TRACEPARENT=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    ] {
        assert!(
            env.lines().any(|line| line == expected),
            "{expected} missing from:\n{env}"
        );
    }
}

#[test]
fn a_secret_wins_over_a_property_of_the_same_name() {
    let step = Step::new("actions:\n  build:\n    run: echo \"$API_KEY\" > out.txt\n")
        .with_properties(
            json!({"gantry": {"env": {"API_KEY": "from-properties"}}}),
            json!({}),
        )
        .with_env("GANTRY_SECRET_NAMES", "API_KEY")
        .with_env("API_KEY", "from-secret");

    step.run("build").success();

    assert_eq!(step.read("out.txt"), "from-secret\n");
}

#[test]
fn exec_inside_a_step_sees_the_current_env_properties() {
    let step = Step::new(
        "actions:\n  build:\n    run: gantry-runner properties set project /gantry/env/LATE late && gantry-runner exec -- sh -c 'echo $LATE > late.txt'\n",
    );

    step.run("build").success();

    assert_eq!(step.read("late.txt"), "late\n");
}

#[test]
fn an_unknown_action_fails_the_step_before_running_anything() {
    let step = Step::new("actions:\n  build:\n    run: touch ran.txt\n    steps: [deplo]\n");

    let run = step.run("build");

    assert_eq!(run.code(), Some(2));
    assert!(
        run.stderr().contains("lists \"deplo\" in its steps"),
        "{}",
        run.stderr()
    );
    assert!(!step.home.join("ran.txt").exists());
}

#[test]
fn an_unknown_child_is_refused() {
    let step = Step::new("actions:\n  build:\n    run: gantry-runner child add nope\n");

    let run = step.run("build");

    assert_eq!(run.code(), Some(1));
    assert!(
        run.stderr().contains("cannot add child \"nope\""),
        "{}",
        run.stderr()
    );
}
