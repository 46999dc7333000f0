//! No import circle between the library's modules: the check the structure issue asks for,
//! runnable by anyone with `cargo test --test module_cycles`.
//!
//! Each file of `src/` is a module. A module depends on the module that *defines* each name it
//! uses — through `use` items and `crate::`/`super::`/`self::` paths in code — with re-exports
//! followed to the definition. A `pub use` is a module's face, not a use: a parent that
//! re-exports its children does not depend on them. Code under `#[cfg(test)]` is left out (tests may
//! use anything). The same granularity as `cargo modules dependencies --acyclic`, without
//! needing rust-analyzer installed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

type ModPath = Vec<String>;

/// One file: its module path, the names it defines, and the paths it names.
#[derive(Default)]
struct Module {
    file: String,
    defines: BTreeSet<String>,
    /// Inline `mod name { … }` blocks (not `#[cfg(test)]`) are part of the file.
    inline_mods: BTreeSet<String>,
    /// `use` items: local name → the path it stands for (absolute or relative as written).
    imports: BTreeMap<String, ModPath>,
    /// Every path the file names, as written (first segment `crate`, `super`, `self` or a
    /// local name).
    paths: Vec<ModPath>,
}

fn module_path(src: &Path, file: &Path) -> ModPath {
    let relative = file.strip_prefix(src).unwrap();
    let mut segments: ModPath = relative
        .iter()
        .map(|s| s.to_string_lossy().into_owned())
        .collect();
    let last = segments.pop().unwrap();
    match last.as_str() {
        "lib.rs" | "mod.rs" => {}
        other => segments.push(other.trim_end_matches(".rs").to_owned()),
    }
    segments
}

fn is_test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|attr| {
        attr.path().is_ident("cfg")
            && attr
                .parse_args::<syn::Meta>()
                .is_ok_and(|meta| meta.path().is_ident("test"))
    })
}

fn flatten_use(prefix: &ModPath, tree: &syn::UseTree, out: &mut Vec<(String, ModPath)>) {
    match tree {
        syn::UseTree::Path(p) => {
            let mut next = prefix.clone();
            next.push(p.ident.to_string());
            flatten_use(&next, &p.tree, out);
        }
        syn::UseTree::Name(n) => {
            let name = n.ident.to_string();
            let mut path = prefix.clone();
            if name == "self" {
                out.push((prefix.last().cloned().unwrap_or_default(), path));
            } else {
                path.push(name.clone());
                out.push((name, path));
            }
        }
        syn::UseTree::Rename(r) => {
            let mut path = prefix.clone();
            if r.ident != "self" {
                path.push(r.ident.to_string());
            }
            out.push((r.rename.to_string(), path));
        }
        syn::UseTree::Group(g) => g.items.iter().for_each(|t| flatten_use(prefix, t, out)),
        // A glob names no single item: the paths that use its names are seen where written.
        syn::UseTree::Glob(_) => {}
    }
}

struct Collector<'m> {
    module: &'m mut Module,
    depth: usize,
}

impl<'ast> Visit<'ast> for Collector<'_> {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        let attrs = match item {
            syn::Item::Const(i) => &i.attrs,
            syn::Item::Enum(i) => &i.attrs,
            syn::Item::Fn(i) => &i.attrs,
            syn::Item::Impl(i) => &i.attrs,
            syn::Item::Mod(i) => &i.attrs,
            syn::Item::Static(i) => &i.attrs,
            syn::Item::Struct(i) => &i.attrs,
            syn::Item::Trait(i) => &i.attrs,
            syn::Item::Type(i) => &i.attrs,
            syn::Item::Use(i) => &i.attrs,
            syn::Item::Macro(i) => &i.attrs,
            _ => return syn::visit::visit_item(self, item),
        };
        if is_test_only(attrs) {
            return;
        }
        if self.depth == 0 {
            let name = match item {
                syn::Item::Const(i) => Some(&i.ident),
                syn::Item::Enum(i) => Some(&i.ident),
                syn::Item::Fn(i) => Some(&i.sig.ident),
                syn::Item::Static(i) => Some(&i.ident),
                syn::Item::Struct(i) => Some(&i.ident),
                syn::Item::Trait(i) => Some(&i.ident),
                syn::Item::Type(i) => Some(&i.ident),
                syn::Item::Union(i) => Some(&i.ident),
                _ => None,
            };
            if let Some(name) = name {
                self.module.defines.insert(name.to_string());
            }
            if let syn::Item::Use(u) = item {
                let mut flat = Vec::new();
                flatten_use(&Vec::new(), &u.tree, &mut flat);
                // A re-export is the module's face, not a use of what it names.
                let used = matches!(u.vis, syn::Visibility::Inherited);
                for (name, path) in flat {
                    if used {
                        self.module.paths.push(path.clone());
                    }
                    self.module.imports.insert(name, path);
                }
                return;
            }
        }
        if let syn::Item::Mod(m) = item {
            if m.content.is_some() {
                self.module.inline_mods.insert(m.ident.to_string());
                self.depth += 1;
                syn::visit::visit_item(self, item);
                self.depth -= 1;
            }
            return;
        }
        syn::visit::visit_item(self, item);
    }

    fn visit_impl_item(&mut self, item: &'ast syn::ImplItem) {
        if let syn::ImplItem::Fn(f) = item
            && is_test_only(&f.attrs)
        {
            return;
        }
        syn::visit::visit_impl_item(self, item);
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: ModPath = path.segments.iter().map(|s| s.ident.to_string()).collect();
        if segments.len() > 1 {
            self.module.paths.push(segments);
        }
        syn::visit::visit_path(self, path);
    }
}

struct Crate {
    modules: HashMap<ModPath, Module>,
}

impl Crate {
    fn read(src: &Path) -> Self {
        let mut modules = HashMap::new();
        let mut stack = vec![src.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path: PathBuf = entry.unwrap().path();
                if path.is_dir() {
                    // The binaries are crates of their own.
                    if path.file_name().unwrap() != "bin" {
                        stack.push(path);
                    }
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    let file = syn::parse_file(&text)
                        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                    let mut module = Module {
                        file: path.strip_prefix(src).unwrap().display().to_string(),
                        ..Module::default()
                    };
                    Collector {
                        module: &mut module,
                        depth: 0,
                    }
                    .visit_file(&file);
                    modules.insert(module_path(src, &path), module);
                }
            }
        }
        Self { modules }
    }

    /// `path` as written in module `at`, made absolute; `None` for another crate's path.
    fn absolute(&self, at: &ModPath, path: &ModPath) -> Option<ModPath> {
        let mut base = match path.first()?.as_str() {
            "crate" => return Some(path[1..].to_vec()),
            "self" => at.clone(),
            "super" => {
                let mut base = at.clone();
                let mut rest = &path[..];
                while rest.first().is_some_and(|s| s == "super") {
                    base.pop()?;
                    rest = &rest[1..];
                }
                base.extend(rest.iter().cloned());
                return Some(base);
            }
            first => {
                let module = self.modules.get(at)?;
                if let Some(target) = module.imports.get(first)
                    && target.first().map(String::as_str) != Some(first)
                {
                    let mut full = self.absolute(at, target)?;
                    full.extend(path[1..].iter().cloned());
                    return Some(full);
                }
                let mut child = at.clone();
                child.push(first.to_owned());
                if self.modules.contains_key(&child) {
                    child.extend(path[1..].iter().cloned());
                    return Some(child);
                }
                return None;
            }
        };
        base.extend(path[1..].iter().cloned());
        Some(base)
    }

    /// The module that defines what `path` (absolute) names, following re-exports.
    fn definer(&self, path: &ModPath, hops: usize) -> Option<ModPath> {
        if hops > 16 {
            return None;
        }
        // The longest prefix that is a file.
        let mut split = path.len();
        while split > 0 && !self.modules.contains_key(&path[..split]) {
            split -= 1;
        }
        let module_path = path[..split].to_vec();
        let module = self.modules.get(&module_path)?;
        let Some(name) = path.get(split) else {
            return None; // a module itself: a namespace, not a dependency
        };
        if module.defines.contains(name) || module.inline_mods.contains(name) {
            return Some(module_path);
        }
        let target = module.imports.get(name)?;
        let target = self.absolute(&module_path, target)?;
        let mut full = target;
        full.extend(path[split + 1..].iter().cloned());
        self.definer(&full, hops + 1)
    }

    /// Module → the modules it depends on, each with the names that tie them.
    fn edges(&self) -> BTreeMap<ModPath, BTreeMap<ModPath, BTreeSet<String>>> {
        let mut edges: BTreeMap<_, BTreeMap<_, BTreeSet<_>>> = BTreeMap::new();
        for (at, module) in &self.modules {
            for path in &module.paths {
                let Some(absolute) = self.absolute(at, path) else {
                    continue;
                };
                if let Some(definer) = self.definer(&absolute, 0)
                    && &definer != at
                {
                    edges
                        .entry(at.clone())
                        .or_default()
                        .entry(definer)
                        .or_default()
                        .insert(path.join("::"));
                }
            }
        }
        edges
    }
}

/// Strongly connected components of more than one module (Tarjan).
fn circles(edges: &BTreeMap<ModPath, BTreeMap<ModPath, BTreeSet<String>>>) -> Vec<Vec<ModPath>> {
    struct Walk<'e> {
        edges: &'e BTreeMap<ModPath, BTreeMap<ModPath, BTreeSet<String>>>,
        index: HashMap<&'e ModPath, usize>,
        low: HashMap<&'e ModPath, usize>,
        stack: Vec<&'e ModPath>,
        on_stack: BTreeSet<&'e ModPath>,
        found: Vec<Vec<ModPath>>,
    }
    impl<'e> Walk<'e> {
        fn visit(&mut self, node: &'e ModPath) {
            let n = self.index.len();
            self.index.insert(node, n);
            self.low.insert(node, n);
            self.stack.push(node);
            self.on_stack.insert(node);
            for next in self.edges.get(node).into_iter().flat_map(|e| e.keys()) {
                if !self.index.contains_key(next) {
                    self.visit(next);
                    let low = self.low[node].min(self.low[next]);
                    self.low.insert(node, low);
                } else if self.on_stack.contains(next) {
                    let low = self.low[node].min(self.index[next]);
                    self.low.insert(node, low);
                }
            }
            if self.low[node] == self.index[node] {
                let mut component = Vec::new();
                loop {
                    let member = self.stack.pop().unwrap();
                    self.on_stack.remove(member);
                    component.push(member.clone());
                    if member == node {
                        break;
                    }
                }
                if component.len() > 1 {
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        edges,
        index: HashMap::new(),
        low: HashMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for node in edges.keys() {
        if !walk.index.contains_key(node) {
            walk.visit(node);
        }
    }
    walk.found
}

fn read_crate() -> Crate {
    Crate::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))
}

#[test]
fn no_import_circle_between_modules() {
    let krate = read_crate();
    let edges = krate.edges();
    let found = circles(&edges);
    let mut report = String::new();
    for component in &found {
        report.push_str("circle:\n");
        for from in component {
            for (to, names) in &edges[from] {
                if component.contains(to) {
                    let names: Vec<_> = names.iter().cloned().collect();
                    report.push_str(&format!(
                        "  {} -> {}: {}\n",
                        krate.modules[from].file,
                        krate.modules[to].file,
                        names.join(", ")
                    ));
                }
            }
        }
    }
    assert!(found.is_empty(), "{report}");
}

/// The check sees real dependencies: if it resolved nothing it would find no circle either.
#[test]
fn the_check_sees_the_dependencies_it_must() {
    let krate = read_crate();
    let edges = krate.edges();
    let depends = |from: &[&str], to: &[&str]| {
        let from: ModPath = from.iter().map(|s| s.to_string()).collect();
        let to: ModPath = to.iter().map(|s| s.to_string()).collect();
        edges.get(&from).is_some_and(|e| e.contains_key(&to))
    };
    // `use crate::outcome::NotActed;`
    assert!(depends(&["limit", "rejection"], &["outcome"]));
    // Through the `store` re-export to the definition in `store::domain`.
    assert!(depends(&["store", "memory", "store"], &["store", "domain"]));
    // A circle of two made-up modules is found.
    let a: ModPath = vec!["a".into()];
    let b: ModPath = vec!["b".into()];
    let mut made_up = BTreeMap::new();
    made_up.insert(a.clone(), BTreeMap::from([(b.clone(), BTreeSet::new())]));
    made_up.insert(b.clone(), BTreeMap::from([(a.clone(), BTreeSet::new())]));
    assert_eq!(circles(&made_up).len(), 1);
}
