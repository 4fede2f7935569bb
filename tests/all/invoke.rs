//! `[workload] invoke`: calling a named export instead of the command entry point.

use crate::guests;
use crate::util::Scene;

#[test]
fn a_component_export_is_invoked_and_its_string_printed() {
    let s = Scene::new();
    let m = s.manifest("[workload]\ninvoke = \"transform\"\n[env]\nINPUT = \"invoice\"\n");
    let r = s.run(Some(&m), guests::COMPONENT_EXPORT_P2, &[]);
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(r.stdout, "transformed:INVOICE\n");
}

#[test]
fn a_core_export_is_invoked_and_its_i32_is_the_exit_code() {
    let s = Scene::new();
    let m = s.manifest("[workload]\ninvoke = \"transform\"\n");
    let r = s.run(Some(&m), guests::REACTOR_P1, &[]);
    assert_eq!(r.code, 7, "{r:#?}");
    assert_eq!(r.stdout, "transform called\n");
}

#[test]
fn invoking_a_missing_export_is_a_start_error() {
    let s = Scene::new();
    let m = s.manifest("[workload]\ninvoke = \"no_such_export\"\n");
    for module in [guests::REACTOR_P1, guests::COMPONENT_EXPORT_P2] {
        s.run(Some(&m), module, &[])
            .assert_one_line_error("no exported function `no_such_export`");
    }
}
