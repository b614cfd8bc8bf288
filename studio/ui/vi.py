"""Vietnamese words for the web app: English text (whole, or a template with {fields}) -> Vietnamese.

`studio.ui.lang` looks a text up whole, then by template, then line by line, part by part (' · ') and sentence
by sentence. A field whose name starts with n matches a number; any other field matches any text, and what it
matched is translated in turn (so a duration or a phase name inside a sentence reads in Vietnamese too).
Names, numbers, file names and technical tokens (LoRA, GGUF, CSV, bf16) stay as they are.

Terms, kept the same everywhere: fine-tune = tinh chỉnh; train = huấn luyện; run = lượt huấn luyện; base
model = mô hình gốc; tuned model = mô hình đã tinh chỉnh; held-out = để riêng (không dùng để huấn luyện);
epoch = lượt học; adapter = bộ chuyển đổi (adapter); export = xuất; upload = tải lên.
"""

from studio.ui.vi_messages import MESSAGES, PATTERNS  # noqa: F401 - the engine's messages, in their own module

EXACT = {
    # The page
    "Studio: fine-tune a small LLM on your Q&A": "Studio: tinh chỉnh một mô hình ngôn ngữ nhỏ trên hỏi-đáp của bạn",
    "# Studio\nTeach a language model your questions and answers: load data, pick a method, train, then compare the "
    "model before and after.":
        "# Studio\nDạy một mô hình ngôn ngữ các câu hỏi và câu trả lời của bạn: nạp dữ liệu, chọn phương pháp, huấn "
        "luyện, rồi so sánh mô hình trước và sau.",
    "1. Data": "1. Dữ liệu",
    "2. Model & method": "2. Mô hình & phương pháp",
    "3. Train": "3. Huấn luyện",
    "4. Chat": "4. Trò chuyện",
    "5. Evaluate": "5. Đánh giá",
    "6. Runs & export": "6. Các lượt & xuất",
    # 1. Data
    "### 1. Your data\nA file of questions and answers: CSV, TSV, Excel, JSON or JSONL. Columns named like "
    "*question*/*answer* (or *instruction*/*output*, *prompt*/*completion*, chat *messages*) are found on their own.":
        "### 1. Dữ liệu của bạn\nMột tệp câu hỏi và câu trả lời: CSV, TSV, Excel, JSON hoặc JSONL. Các cột có tên "
        "như `question`/`answer` (hoặc `instruction`/`output`, `prompt`/`completion`, hội thoại `messages`) được "
        "tự nhận ra.",
    "Data file": "Tệp dữ liệu",
    "Load sample (40 ferry Q&A pairs)": "Nạp dữ liệu mẫu (40 cặp hỏi-đáp về phà)",
    "Load preference sample (24 chosen/rejected pairs)": "Nạp mẫu so sánh (24 cặp câu trả lời chọn/loại)",
    "No data loaded yet.": "Chưa nạp dữ liệu.",
    "No Q&A file yet? Draft pairs from a document (txt, md, pdf, docx)":
        "Chưa có tệp hỏi-đáp? Soạn các cặp từ một tài liệu (txt, md, pdf, docx)",
    "No table of questions yet? Upload a manual or handbook: a model drafts question/answer pairs from it, you "
    "review them, and only the pairs you keep become training data.":
        "Chưa có bảng câu hỏi? Tải lên một sách hướng dẫn hay sổ tay: một mô hình soạn các cặp hỏi-đáp từ đó, bạn "
        "xem lại, và chỉ những cặp bạn giữ mới thành dữ liệu huấn luyện.",
    "Document (txt, md, pdf, docx)": "Tài liệu (txt, md, pdf, docx)",
    "Drafting model": "Mô hình soạn",
    "'default' (the built-in small model), a local model folder or a hub id; with an endpoint, the model name that "
    "server knows.":
        "'default' (mô hình nhỏ có sẵn), một thư mục mô hình trên máy hoặc một mã trên Hugging Face Hub; khi dùng "
        "máy chủ ngoài, là tên mô hình mà máy chủ đó biết.",
    "Pairs per passage": "Số cặp mỗi đoạn",
    "Use an OpenAI-compatible endpoint instead (optional; larger models draft better)":
        "Dùng một máy chủ tương thích OpenAI thay thế (không bắt buộc; mô hình lớn hơn soạn tốt hơn)",
    "Endpoint URL": "Địa chỉ URL của máy chủ",
    "API key": "Khóa API",
    "used for this drafting only, never stored": "chỉ dùng cho lần soạn này, không bao giờ được lưu",
    "Draft pairs": "Soạn các cặp",
    "Draft pairs: edit cells, delete rows you do not want": "Các cặp đã soạn: sửa ô, xóa những hàng bạn không muốn",
    "question": "câu hỏi",
    "answer": "câu trả lời",
    "Use these pairs as my training data": "Dùng các cặp này làm dữ liệu huấn luyện của tôi",
    "Question column": "Cột câu hỏi",
    "(none)": "(không có)",
    "Answer column": "Cột câu trả lời",
    "Context column": "Cột ngữ cảnh (thêm vào trước câu hỏi)",
    "System column": "Cột lời nhắc hệ thống (mỗi hàng một lời riêng)",
    "Preview (first rows, as in the file)": "Xem trước (các hàng đầu, như trong tệp)",
    "Load a file above to see its first rows here": "Nạp một tệp ở trên để xem các hàng đầu ở đây",
    "Problems (row numbers as in the file)": "Vấn đề (số hàng như trong tệp)",
    "row": "hàng",
    "level": "mức",
    "problem": "vấn đề",
    "error": "lỗi",
    "warning": "cảnh báo",
    "Token lengths": "Độ dài tính bằng token",
    "Example": "Ví dụ",
    "As the model sees it (only the green part is learned)": "Như mô hình thấy (chỉ phần màu xanh được học)",
    "Export this data for a hosted fine-tuning API": "Xuất dữ liệu này cho một dịch vụ tinh chỉnh trực tuyến",
    "OpenAI chat JSONL": "JSONL hội thoại OpenAI",
    "Alpaca JSON": "JSON Alpaca",
    "Exported data": "Dữ liệu đã xuất",
    # 2. Model & method
    "### 2. Model & method\nEvery setting explains itself (hover the ⓘ). The defaults train the built-in small "
    "model on this computer's CPU.":
        "### 2. Mô hình & phương pháp\nMỗi thiết lập có lời giải thích (di chuột lên ⓘ). Giá trị mặc định huấn "
        "luyện mô hình nhỏ có sẵn trên CPU của máy này.",
    "Start from a recipe": "Bắt đầu từ một công thức",
    "Load recipe": "Nạp công thức",
    "…or upload a recipe YAML": "…hoặc tải lên một công thức YAML",
    "Objective": "Mục tiêu",
    "What to learn from: 'sft' imitates the answers of a Q&A file; 'dpo' and 'orpo' learn from a preference file "
    "(prompt, chosen, rejected) to prefer the chosen answer. DPO usually starts from an SFT run's adapter (see "
    "init_adapter); ORPO also learns the chosen answers, so it can start from the base model.":
        "Học từ đâu: 'sft' bắt chước các câu trả lời của một tệp hỏi-đáp; 'dpo' và 'orpo' học từ một tệp so sánh "
        "(câu hỏi, câu được chọn, câu bị loại) để ưa câu được chọn hơn. DPO thường bắt đầu từ adapter của một lượt "
        "SFT; ORPO cũng học các câu được chọn nên có thể bắt đầu từ mô hình gốc.",
    "Learn the answers of a Q&A file": "Học các câu trả lời của một tệp hỏi-đáp",
    "DPO: prefer the chosen answer of a preference file": "DPO: ưa câu trả lời được chọn của một tệp so sánh",
    "ORPO: learn the chosen answers and prefer them": "ORPO: học các câu được chọn và ưa chúng hơn",
    "Beta": "Beta (độ mạnh của so sánh)",
    "DPO/ORPO strength. DPO: how far the model may move from where it started (higher: stays closer); ORPO: weight "
    "of the preference term next to learning the chosen answers. 0.1 is typical.":
        "Độ mạnh của DPO/ORPO. DPO: mô hình được đi xa điểm xuất phát bao nhiêu (cao hơn: ở gần hơn); ORPO: trọng "
        "số của phần so sánh bên cạnh việc học các câu được chọn. Thường là 0.1.",
    "Start from run": "Bắt đầu từ lượt",
    "A finished LoRA run (its folder or run id) whose adapter to start from and keep improving: for DPO/ORPO "
    "typically an SFT run on the same base model, for SFT a run to continue on new or corrected data. Empty: "
    "start a fresh adapter on the base model.":
        "Một lượt LoRA đã xong (thư mục hoặc mã lượt) mà adapter của nó được dùng tiếp và cải thiện thêm: với "
        "DPO/ORPO thường là một lượt SFT trên cùng mô hình gốc, với SFT là một lượt cần học tiếp trên dữ liệu mới "
        "hoặc đã sửa. Để trống: một adapter mới trên mô hình gốc.",
    "(none: a fresh adapter on the base model)": "(không: một adapter mới trên mô hình gốc)",
    "Base model": "Mô hình gốc",
    "Base model to fine-tune: 'default' for the embedded SmolLM2-135M-Instruct, a local folder with a Hugging Face "
    "model, or a hub id such as 'Qwen/Qwen2.5-0.5B-Instruct'.":
        "Mô hình gốc để tinh chỉnh: 'default' là SmolLM2-135M-Instruct có sẵn, hoặc một thư mục chứa mô hình "
        "Hugging Face trên máy, hoặc một mã trên Hub như 'Qwen/Qwen2.5-0.5B-Instruct'.",
    "Method": "Phương pháp",
    "How to train: 'lora' adds small trainable matrices (fast, little memory); 'qlora' does the same on a 4-bit "
    "base model (about a quarter of the memory for the base, on a GPU or the CPU; slower per step); 'full' trains "
    "every weight (most memory); 'head' trains only the output layer.":
        "Cách huấn luyện: 'lora' thêm các ma trận nhỏ để học (nhanh, ít bộ nhớ); 'qlora' làm như vậy trên bản 4-bit "
        "của mô hình gốc (khoảng một phần tư bộ nhớ cho mô hình gốc, trên GPU hoặc CPU; mỗi bước chậm hơn); 'full' "
        "huấn luyện mọi trọng số (nhiều bộ nhớ nhất); 'head' chỉ huấn luyện lớp đầu ra.",
    "LoRA: a small add-on to the model. Fast, little memory (recommended)":
        "LoRA: một phần bổ sung nhỏ cho mô hình. Nhanh, ít bộ nhớ (khuyên dùng)",
    "QLoRA: the same add-on on a 4-bit copy of the model. Least memory, slower":
        "QLoRA: cùng phần bổ sung đó trên bản 4-bit của mô hình. Ít bộ nhớ nhất, chậm hơn",
    "Full: changes every weight. Most memory, slowest": "Toàn bộ: thay đổi mọi trọng số. Nhiều bộ nhớ nhất, chậm nhất",
    "Output layer only: fastest, learns least": "Chỉ lớp đầu ra: nhanh nhất, học ít nhất",
    "Epochs": "Số lượt học",
    "Passes over the training data. More: learns facts better, may memorise.":
        "Số lần đi qua dữ liệu huấn luyện. Nhiều hơn: học thông tin tốt hơn, có thể học thuộc lòng.",
    "System prompt": "Lời nhắc hệ thống",
    "Optional instruction put before every question, e.g. 'You answer questions about our products.' Use the same "
    "one when chatting.":
        "Chỉ dẫn tùy chọn đặt trước mỗi câu hỏi, ví dụ 'Bạn trả lời các câu hỏi về sản phẩm của chúng tôi.' Dùng "
        "cùng lời nhắc đó khi trò chuyện.",
    "<small>These are the choices that matter most; the defaults are sized to your data. Every other setting (rank, "
    "learning rate, batch, extra wordings, held-out size...) is in the Advanced section below.</small>":
        "<small>Đây là những lựa chọn quan trọng nhất; giá trị mặc định được chỉnh theo dữ liệu của bạn. Mọi "
        "thiết lập khác (hạng, tốc độ học, lô, cách diễn đạt thêm, phần để riêng...) nằm trong mục Nâng cao bên "
        "dưới.</small>",
    "Advanced": "Nâng cao",
    "Rank r": "Hạng r",
    "LoRA rank. Higher: more capacity to learn, more memory and time. 8-64 is typical.":
        "Hạng của LoRA. Cao hơn: học được nhiều hơn, tốn bộ nhớ và thời gian hơn. Thường từ 8 đến 64.",
    "Alpha": "Alpha",
    "LoRA alpha: scales the update (effective scale alpha/r). Usually 1-2x the rank.":
        "Alpha của LoRA: phóng to phần cập nhật (hệ số thực là alpha/r). Thường gấp 1-2 lần hạng.",
    "Dropout": "Dropout (bỏ ngẫu nhiên)",
    "LoRA dropout: randomly drops the adapter's input to fight overfitting.":
        "Dropout của LoRA: bỏ ngẫu nhiên một phần đầu vào của adapter để tránh học thuộc lòng.",
    "Target modules": "Các lớp được thêm adapter",
    "Layers that get adapters: 'all-linear' or a comma-separated list such as 'q_proj,v_proj'.":
        "Các lớp nhận adapter: 'all-linear' (mọi lớp tuyến tính) hoặc danh sách cách nhau bằng dấu phẩy như "
        "'q_proj,v_proj'.",
    "Learning rate": "Tốc độ học",
    "Step size of the optimiser. Too high: loss jumps; too low: nothing learned.":
        "Độ lớn mỗi bước của bộ tối ưu. Quá cao: sai số nhảy lung tung; quá thấp: không học được gì.",
    "Batch size": "Kích thước lô",
    "Examples per step on each device. Higher: faster, more memory.":
        "Số ví dụ mỗi bước trên mỗi thiết bị. Cao hơn: nhanh hơn, tốn bộ nhớ hơn.",
    "Max length (tokens)": "Độ dài tối đa (token)",
    "Longest example in tokens; longer ones are cut at the end. Higher: fewer cut answers, more memory.":
        "Ví dụ dài nhất tính bằng token; ví dụ dài hơn bị cắt ở cuối. Cao hơn: ít câu trả lời bị cắt, tốn bộ nhớ "
        "hơn.",
    "Question rewrites": "Câu hỏi viết lại",
    "Rewrites of each question drafted by the base model before training (0: off). They teach the facts in more "
    "than one wording, so the tuned model also answers questions asked differently. Listed in the run's "
    "data/paraphrases.jsonl.":
        "Các cách viết lại mỗi câu hỏi do mô hình gốc soạn trước khi huấn luyện (0: tắt). Chúng dạy thông tin bằng "
        "nhiều cách diễn đạt, để mô hình đã tinh chỉnh trả lời được cả câu hỏi hỏi theo cách khác. Liệt kê trong "
        "data/paraphrases.jsonl của lượt.",
    "Question forms": "Dạng câu hỏi",
    "Rule-based rewordings of each English question added before training (0: off): other question words and forms "
    "('What is X called?' -> 'What is the name of X?', 'Name X.'; 'How much is X?' -> 'What does X cost?') and "
    "everyday ones ('Quick question: ...', all lower case). Exact and free: no drafting. Listed in the run's "
    "data/question_forms.jsonl.":
        "Các cách diễn đạt lại theo quy tắc cho mỗi câu hỏi tiếng Anh, thêm trước khi huấn luyện (0: tắt): từ để "
        "hỏi và dạng câu khác, và dạng thường ngày (chữ thường, 'Quick question: ...'). Chính xác và không tốn "
        "thời gian soạn. Liệt kê trong data/question_forms.jsonl của lượt.",
    "General answers kept": "Giữ câu trả lời chung",
    "General questions (from the studio's own list) answered by the base model and mixed into training (0: off). "
    "They keep a model tuned hard on a few facts from answering everything with those facts. Listed in the run's "
    "data/replay.jsonl.":
        "Các câu hỏi chung (từ danh sách của studio) do mô hình gốc trả lời và trộn vào dữ liệu huấn luyện (0: "
        "tắt). Chúng giữ cho mô hình học kỹ vài thông tin không trả lời mọi câu bằng chính những thông tin đó. "
        "Liệt kê trong data/replay.jsonl của lượt.",
    "Held-out size": "Số câu để riêng",
    "Held-out examples for evaluation: empty for automatic (about 10%, at most 100), a count such as 20, a fraction "
    "such as 0.1, or 0 for none.":
        "Số ví dụ để riêng cho việc đánh giá (không dùng để huấn luyện): để trống là tự động (khoảng 10%, tối đa "
        "100), một số như 20, một tỉ lệ như 0.1, hoặc 0 để không giữ câu nào.",
    "automatic": "tự động",
    "Rewrites by (endpoint URL)": "Viết lại bằng (URL máy chủ)",
    "OpenAI-compatible URL of a larger model to write the question rewrites instead of the base model, e.g. "
    "http://localhost:11434/v1 (Ollama) or http://localhost:8000/v1 (vLLM, llama.cpp). Better rewrites teach more: "
    "one human-quality rewrite per fact added ~11 points of paraphrased-question hits in bench/learn.py. Empty: "
    "the base model writes them. Its API key, if it needs one, is read from the STUDIO_REWRITE_API_KEY environment "
    "variable and never stored.":
        "URL tương thích OpenAI của một mô hình lớn hơn để viết lại câu hỏi thay cho mô hình gốc, ví dụ "
        "http://localhost:11434/v1 (Ollama) hoặc http://localhost:8000/v1 (vLLM, llama.cpp). Viết lại tốt hơn thì "
        "dạy được nhiều hơn. Để trống: mô hình gốc tự viết. Khóa API (nếu cần) được đọc từ biến môi trường "
        "STUDIO_REWRITE_API_KEY và không bao giờ được lưu.",
    "Rewrite model name": "Tên mô hình viết lại",
    "The model name data.rewrite_endpoint knows, e.g. llama3.1:8b or gpt-4o-mini.":
        "Tên mô hình mà máy chủ viết lại biết, ví dụ llama3.1:8b hoặc gpt-4o-mini.",
    "Trust remote code": "Tin mã đi kèm mô hình",
    "Run Python code shipped with the model. Only tick this for models whose authors you trust.":
        "Chạy mã Python đi kèm mô hình. Chỉ chọn khi bạn tin tác giả của mô hình.",
    "Grad accum": "Cộng dồn gradient",
    "Gradient accumulation: steps summed before one update (effective batch = batch x this).":
        "Cộng dồn gradient: số bước cộng lại trước một lần cập nhật (lô thực = lô x số này).",
    "Max steps": "Số bước tối đa",
    "Stop after this many updates (0: run all epochs).": "Dừng sau chừng này lần cập nhật (0: chạy hết các lượt học).",
    "Schedule": "Lịch tốc độ học",
    "How the learning rate changes over the run.": "Tốc độ học thay đổi thế nào trong lượt huấn luyện.",
    "Warm-up ratio": "Tỉ lệ khởi động",
    "Share of the run spent ramping the learning rate up.": "Phần của lượt dùng để tăng dần tốc độ học.",
    "Weight decay": "Suy giảm trọng số",
    "Pulls weights toward zero; a mild regulariser.": "Kéo trọng số về gần 0; một cách điều chuẩn nhẹ.",
    "NEFTune noise": "Nhiễu NEFTune",
    "NEFTune: noise added to embeddings while training (0: off, 5 is common).":
        "NEFTune: nhiễu thêm vào embedding khi huấn luyện (0: tắt, thường là 5).",
    "Precision": "Độ chính xác số",
    "Number format: 'auto' picks bf16 where the CPU or GPU supports it, else fp32.":
        "Kiểu số: 'auto' chọn bf16 nếu CPU hoặc GPU hỗ trợ, nếu không thì fp32.",
    "Grad checkpointing": "Tính lại kích hoạt (tiết kiệm bộ nhớ)",
    "Recompute activations instead of storing them: less memory, about 30% slower.":
        "Tính lại các giá trị kích hoạt thay vì lưu chúng: ít bộ nhớ hơn, chậm hơn khoảng 30%.",
    "Checkpoint every": "Lưu điểm dừng mỗi",
    "Write a resumable checkpoint every this many updates (at most this much is lost on a crash).":
        "Ghi một điểm dừng có thể tiếp tục sau chừng này lần cập nhật (nếu máy hỏng, mất nhiều nhất chừng này).",
    "Checkpoint every (seconds)": "Lưu điểm dừng mỗi (giây)",
    "Also write a checkpoint once this many seconds of training have passed since the last one, so a crash loses "
    "at most about this much (0: by updates only). Single-process runs; under accelerate launch, by updates only.":
        "Cũng ghi một điểm dừng sau chừng này giây huấn luyện kể từ lần trước, để nếu máy hỏng chỉ mất nhiều nhất "
        "chừng ấy (0: chỉ theo số lần cập nhật). Chỉ cho lượt chạy một tiến trình; với accelerate launch thì theo "
        "số lần cập nhật.",
    "Eval every": "Đánh giá mỗi",
    "Evaluate every this many updates (0: once per epoch).": "Đánh giá sau chừng này lần cập nhật (0: mỗi lượt học).",
    "Log every": "Ghi nhật ký mỗi",
    "Record the loss every this many updates.": "Ghi sai số sau chừng này lần cập nhật.",
    "Seed": "Hạt giống ngẫu nhiên",
    "Random seed for the split, the adapter's start and the data order.":
        "Hạt giống ngẫu nhiên cho cách chia dữ liệu, điểm khởi đầu của adapter và thứ tự dữ liệu.",
    "Checks": "Kiểm tra",
    "Recipe YAML and command line": "Công thức YAML và dòng lệnh",
    "Download recipe.yaml": "Tải về recipe.yaml",
    "Run the same from a terminal": "Chạy y như vậy từ cửa sổ dòng lệnh",
    # 3. Train
    "### 3. Train\nTraining runs in the background: you can close this page and come back.":
        "### 3. Huấn luyện\nViệc huấn luyện chạy nền: bạn có thể đóng trang này rồi quay lại.",
    "Start training": "Bắt đầu huấn luyện",
    "Stop": "Dừng",
    "Resume": "Tiếp tục",
    "Run shown": "Lượt đang xem",
    "↻ Refresh list": "↻ Làm mới danh sách",
    "Loss": "Sai số",
    "Log": "Nhật ký",
    "Log (details)": "Nhật ký (chi tiết)",
    # 4. Chat
    "### 4. Chat\nAsk the same question to the model before and after training.":
        "### 4. Trò chuyện\nHỏi cùng một câu cho mô hình trước và sau khi huấn luyện.",
    "Trained run": "Lượt đã huấn luyện",
    "↻ Refresh": "↻ Làm mới",
    "Held-out questions from this run (one click away)": "Câu hỏi để riêng của lượt này (bấm để hỏi)",
    "Questions to try (one click away)": "Câu hỏi để thử (bấm để hỏi)",
    "Temperature": "Nhiệt độ (độ ngẫu nhiên)",
    "0: always the most likely words; higher: more varied.": "0: luôn chọn từ khả dĩ nhất; cao hơn: đa dạng hơn.",
    "Max new tokens": "Số token mới tối đa",
    "Questions it was taught": "Những câu hỏi mô hình đã được dạy",
    "The same facts asked in other words (never trained on)":
        "Cùng thông tin đó hỏi bằng lời khác (chưa từng được huấn luyện)",
    "Base model (before)": "Mô hình gốc (trước)",
    "SFT run (where DPO/ORPO started)": "Lượt SFT (nơi DPO/ORPO bắt đầu)",
    "Tuned model (after)": "Mô hình đã tinh chỉnh (sau)",
    "Your question": "Câu hỏi của bạn",
    "Ask something your data answers…": "Hỏi điều mà dữ liệu của bạn trả lời được…",
    "Clear": "Xóa",
    # 5. Evaluate
    "### 5. Did it learn?\nThe base and the tuned model answer the same questions; the scores say which one knows "
    "your material. Without a file, the run's held-out questions are used (or, when nothing was held out, its own "
    "training questions as a recall check).":
        "### 5. Mô hình đã học được chưa?\nMô hình gốc và mô hình đã tinh chỉnh trả lời cùng các câu hỏi; điểm số "
        "cho biết mô hình nào nắm được tài liệu của bạn. Nếu không có tệp, các câu hỏi để riêng của lượt được dùng "
        "(hoặc, khi không để riêng câu nào, chính các câu hỏi huấn luyện để kiểm tra khả năng nhớ).",
    "Run": "Lượt",
    "Your own questions (optional): question column, answer column optional":
        "Câu hỏi của riêng bạn (không bắt buộc): một cột câu hỏi, cột câu trả lời nếu có",
    "Max new tokens per answer": "Số token mới tối đa mỗi câu trả lời",
    "Evaluate": "Đánh giá",
    "Forgetting check (general questions)": "Kiểm tra quên kiến thức (câu hỏi chung)",
    "Answers side by side": "Các câu trả lời cạnh nhau",
    "⚠ tuned states a wrong value": "⚠ nói sai một giá trị",
    "reference": "đáp án",
    "base answer": "câu trả lời của mô hình gốc",
    "tuned answer": "câu trả lời sau tinh chỉnh",
    "base ✓": "gốc ✓",
    "tuned ✓": "tinh chỉnh ✓",
    # 6. Runs & export
    "### 6. Runs & export": "### 6. Các lượt & xuất",
    "All runs": "Tất cả các lượt",
    "Compare runs": "So sánh các lượt",
    "Correct the answers, then train again": "Sửa các câu trả lời, rồi huấn luyện lại",
    "Click a row of the table to mark its tuned answer. For a wrong one, type the right answer (the box starts with "
    "the model's answer to edit).": "Bấm vào một hàng của bảng để đánh dấu câu trả lời sau tinh chỉnh. Với câu sai, "
    "hãy gõ câu trả lời đúng (ô này bắt đầu bằng câu trả lời của mô hình để bạn sửa).",
    "Question": "Câu hỏi",
    "The tuned model's answer": "Câu trả lời của mô hình sau tinh chỉnh",
    "This answer is": "Câu trả lời này",
    "right": "đúng",
    "wrong": "sai",
    "The right answer": "Câu trả lời đúng",
    "Save this mark": "Lưu đánh dấu này",
    "Train again": "Huấn luyện lại",
    "From scratch: a fresh adapter learns your data with the corrections in it":
        "Từ đầu: một adapter mới học dữ liệu của bạn có kèm các chỗ sửa",
    "Continue: this run's adapter keeps training on it, keeping what it learned":
        "Tiếp tục: adapter của lượt này học tiếp trên đó, giữ lại những gì đã học",
    "Train again with my corrections": "Huấn luyện lại với các chỗ sửa của tôi",
    "The wrong answers as preference pairs (.csv, for DPO/ORPO)": "Các câu trả lời sai thành cặp ưu tiên (.csv, cho "
    "DPO/ORPO)",
    "Preference pairs": "Các cặp ưu tiên",
    "Mark the tuned model's last reply": "Đánh dấu câu trả lời gần nhất của mô hình sau tinh chỉnh",
    "Edit the last reply": "Sửa câu trả lời gần nhất",
    "Loss curves of every run picked; with two or more, the settings that differ and, from the first run picked to "
    "the others, the held-out questions that changed.": "Đường sai số của mọi lượt đã chọn; với hai lượt trở lên, "
    "các thiết lập khác nhau và, từ lượt chọn đầu tiên sang các lượt khác, những câu hỏi kiểm tra đã thay đổi.",
    "Settings that differ": "Các thiết lập khác nhau",
    "How each did": "Kết quả của từng lượt",
    "Question by question, from the first run picked": "Từng câu hỏi, so với lượt chọn đầu tiên",
    "Loss curves": "Các đường sai số",
    "Queue: runs waiting their turn": "Hàng đợi: các lượt đang chờ đến lượt",
    "Press **Start training** while a run trains and the new run waits here; they train one after another, also "
    "after a restart of the studio.":
        "Bấm **Bắt đầu huấn luyện** khi một lượt đang huấn luyện thì lượt mới chờ ở đây; chúng lần lượt được huấn "
        "luyện, kể cả sau khi khởi động lại studio.",
    "Waiting to train": "Đang chờ huấn luyện",
    "Waiting run": "Lượt đang chờ",
    "Move up": "Đưa lên trước",
    "Take out of the queue": "Rút khỏi hàng đợi",
    "Add to the queue": "Thêm vào hàng đợi",
    "Try several settings": "Thử nhiều thiết lập",
    "One run per value of one setting, with everything else as on the Model & method tab; each answers its held-out "
    "questions, and the Runs & export tab names the best.":
        "Một lượt cho mỗi giá trị của một thiết lập, mọi thứ khác như ở thẻ Mô hình & phương pháp; mỗi lượt trả lời "
        "các câu hỏi để riêng, và thẻ Các lượt & xuất nêu tên lượt tốt nhất.",
    "Setting to try": "Thiết lập để thử",
    "Values (2 to 4)": "Các giá trị (2 đến 4)",
    "Leave empty and Studio picks half, the sized value, and double.":
        "Để trống thì Studio chọn một nửa, giá trị đã định theo dữ liệu, và gấp đôi.",
    "Show the runs and the time": "Xem các lượt và thời gian",
    "Start these runs": "Bắt đầu các lượt này",
    "learning rate": "tốc độ học",
    "LoRA rank r": "hạng LoRA r",
    "epochs": "số epoch",
    "Sweeps (several settings tried)": "Các lần thử nhiều thiết lập",
    "Use the best run's settings": "Dùng thiết lập của lượt tốt nhất",
    "Experiment tracker": "Công cụ theo dõi thí nghiệm",
    "Revisions of this run's data (your upload is never changed)":
        "Các phiên bản dữ liệu của lượt này (tệp bạn tải lên không bao giờ bị thay đổi)",
    "Download this revision (.jsonl)": "Tải phiên bản này (.jsonl)",
    "Revision": "Phiên bản",
    "revision": "phiên bản",
    "added": "đã thêm",
    "edited": "đã sửa",
    "when": "khi nào",
    "rows": "số hàng",
    "none": "không dùng",
    "Also send the loss to an experiment tracker you already use: 'tensorboard' (logs in the run's checkpoints/runs "
    "folder), 'trackio' or 'wandb', where installed. The run folder stays the record either way.":
        "Gửi thêm sai số đến công cụ theo dõi thí nghiệm bạn đang dùng: 'tensorboard' (nhật ký trong thư mục "
        "checkpoints/runs của lượt), 'trackio' hoặc 'wandb', nếu đã cài. Dù thế nào, thư mục của lượt vẫn là bản "
        "ghi chính.",
    "Judge the answers with a larger model (optional)": "Chấm các câu trả lời bằng một mô hình lớn hơn (tùy chọn)",
    "A larger model behind an OpenAI-compatible endpoint (Ollama, vLLM, a company gateway) grades each tuned answer "
    "against the reference: correct, partly or wrong, with a reason. It catches a right answer in other words and a "
    "multi-part answer missing a part; it is shown beside the exact-fact check, not instead of it.":
        "Một mô hình lớn hơn sau một endpoint tương thích OpenAI (Ollama, vLLM, cổng của công ty) chấm từng câu trả "
        "lời đã tinh chỉnh so với câu tham chiếu: đúng, đúng một phần hoặc sai, kèm lý do. Nó nhận ra câu trả lời "
        "đúng nhưng diễn đạt khác và câu trả lời nhiều phần bị thiếu một phần; nó được hiển thị bên cạnh phép kiểm "
        "tra dữ kiện chính xác, không thay thế nó.",
    "Judge endpoint": "Endpoint của người chấm",
    "Judge model": "Mô hình chấm",
    "API key (if the endpoint needs one)": "Khóa API (nếu endpoint cần)",
    "Judge the tuned answers": "Chấm các câu trả lời đã tinh chỉnh",
    "The judge's grades": "Điểm của người chấm",
    "the judge's reason": "lý do của người chấm",
    "Set by this studio's operator.": "Do người vận hành studio này đặt.",
    "grade": "điểm",
    "judged correct": "được chấm đúng",
    "not judged": "chưa chấm",
    "Export run": "Xuất lượt",
    "Adapter (.zip)": "Adapter (.zip)",
    "Merged model (.zip)": "Mô hình đã gộp (.zip)",
    "Recipe (.yaml)": "Công thức (.yaml)",
    "GGUF f16 + Modelfile (.zip)": "GGUF f16 + Modelfile (.zip)",
    "GGUF q8_0 + Modelfile (.zip)": "GGUF q8_0 + Modelfile (.zip)",
    "<small>The adapter is small and needs the base model; the merged model stands alone (it takes a moment to "
    "build). GGUF files run in llama.cpp and Ollama (llama-family models); each is checked by loading it back and "
    "comparing its logits with the merged model.</small>":
        "<small>Adapter nhỏ và cần mô hình gốc đi kèm; mô hình đã gộp dùng được một mình (cần một lúc để tạo). Tệp "
        "GGUF chạy trong llama.cpp và Ollama (các mô hình họ llama); mỗi tệp được kiểm tra bằng cách nạp lại và so "
        "với mô hình đã gộp.</small>",
    "Download": "Tải về",
    "Push to the Hugging Face Hub": "Đưa lên Hugging Face Hub",
    "Repository (owner/name)": "Kho (chủ/tên)",
    "Access token (write)": "Mã truy cập (quyền ghi)",
    "What": "Nội dung",
    "adapter": "adapter",
    "merged": "mô hình đã gộp",
    "Push (private repository)": "Đưa lên (kho riêng tư)",
    **MESSAGES,
}

# Gradio's own status lines with a number in them: (regular expression, replacement with $1, $2...).
GRADIO_PATTERNS = [
    (r"^In queue: (\d+) of (\d+)$", "Đang chờ: $1 trên $2"),
    (r"^In queue$", "Đang chờ"),
    (r"^processing \| (.*)$", "đang xử lý | $1"),
]

# Gradio's own widgets write these (its frontend has no Vietnamese): replaced in the page as they appear.
GRADIO = {
    "Drop File Here": "Thả tệp vào đây",
    "- or -": "- hoặc -",
    "Click to Upload": "Bấm để tải lên",
    "Use via API": "Dùng qua API",
    "Built with Gradio": "Tạo bằng Gradio",
    "Settings": "Cài đặt",
    "Loading...": "Đang tải...",
    "Error": "Lỗi",
    "Close": "Đóng",
    "Copy": "Sao chép",
    "Copied": "Đã sao chép",
    "Empty": "Trống",
    "processing": "đang xử lý",
    "Info": "Thông tin",
    "Warning": "Cảnh báo",
    "Download": "Tải về",
    "Search": "Tìm",
    "Upload": "Tải lên",
    "Drop CSV or TSV file here": "Thả tệp CSV hoặc TSV vào đây",
}
