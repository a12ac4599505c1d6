{
  "targets": [
    {
      "target_name": "interprocess_objects",
      "sources": [
        "native/addon.cc",
        "native/segment_posix.cc",
        "native/wait_posix.cc",
        "native/async_wait.cc",
        "native/segment_win32.cc",
        "native/notifier_posix.cc",
        "native/notifier_win32.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": [
        "NAPI_VERSION=8",
        "NODE_API_NO_EXTERNAL_BUFFERS_ALLOWED",
        "NAPI_CPP_EXCEPTIONS"
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "MACOSX_DEPLOYMENT_TARGET": "11.0"
      },
      "msvs_settings": { "VCCLCompilerTool": { "ExceptionHandling": 1 } },
      "conditions": [["OS=='linux'", { "libraries": ["-lrt"] }]]
    }
  ]
}
