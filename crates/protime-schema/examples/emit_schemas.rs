//! Prints every schema file as JSON `[{"path": …, "contents": …}, …]`; `cargo xtask schema`
//! runs it and writes (or checks) the files. Kept out of xtask's own dependencies so that
//! xtask never has to compile the generated client it regenerates.

fn main() {
    let files: Vec<serde_json::Value> = protime_schema::schema_files()
        .into_iter()
        .map(|file| serde_json::json!({ "path": file.path, "contents": file.contents }))
        .collect();
    println!("{}", serde_json::Value::Array(files));
}
