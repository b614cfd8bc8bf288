"""Vietnamese for what the studio writes as it works: progress, phases, verdicts, problems, notes.

MESSAGES are whole texts; PATTERNS are templates tried in order (specific before general), where a field named
n... is a number and any other field is text, translated in turn. See `studio.ui.vi` for the page's own words
and `studio.ui.lang` for how a text is looked up.
"""

MESSAGES = {
    # Data tab
    "Choose a file first.": "Hãy chọn một tệp trước.",
    "Load a file first.": "Hãy nạp một tệp trước.",
    "Load a file with usable rows first.": "Hãy nạp một tệp có hàng dùng được trước.",
    "No problems found.": "Không thấy vấn đề nào.",
    "(no rows)": "(không có hàng)",
    "prompt (not trained)": "câu hỏi (không học)",
    "answer (trained)": "câu trả lời (được học)",
    "tokens per example": "số token mỗi ví dụ",
    "examples": "ví dụ",
    "top right": "trên cùng bên phải",
    "Token lengths and the example view are for Q&A files; preference pairs are cut to max_length as a prompt plus "
    "one answer.":
        "Độ dài token và phần xem ví dụ dành cho tệp hỏi-đáp; các cặp so sánh được cắt theo độ dài tối đa, tính "
        "câu hỏi cộng một câu trả lời.",
    "These exports are for Q&A files; a preference file is already in the prompt/chosen/rejected form hosted DPO "
    "APIs take.":
        "Các kiểu xuất này dành cho tệp hỏi-đáp; tệp so sánh đã ở dạng prompt/chosen/rejected mà các dịch vụ DPO "
        "trực tuyến nhận.",
    "Upload a document first.": "Hãy tải lên một tài liệu trước.",
    "No pair has both a question and an answer. Draft again, or type some pairs into the table.":
        "Không cặp nào có đủ câu hỏi và câu trả lời. Hãy soạn lại, hoặc gõ vài cặp vào bảng.",
    "Read every pair against the document: fix wrong answers, delete rows you do not want (or clear their "
    "question), then press **Use these pairs**.":
        "Đọc từng cặp đối chiếu với tài liệu: sửa câu trả lời sai, xóa các hàng bạn không muốn (hoặc xóa câu hỏi "
        "của chúng), rồi bấm **Dùng các cặp này**.",
    "Drafting": "Đang soạn",
    "passages": "đoạn",
    "Pairs of a good and a worse answer: train them with **DPO** or **ORPO** (the Model & method tab switches to "
    "DPO). Best after an SFT run on your Q&A: pick it under *Start from run*.":
        "Các cặp gồm một câu trả lời tốt và một câu kém hơn: huấn luyện bằng **DPO** hoặc **ORPO** (thẻ Mô hình & "
        "phương pháp chuyển sang DPO). Tốt nhất sau một lượt SFT trên hỏi-đáp của bạn: chọn lượt đó ở *Bắt đầu từ "
        "lượt*.",
    # Model tab
    "✅ The recipe is valid.": "✅ Công thức hợp lệ.",
    "Fix the problems above to see the costs.": "Sửa các vấn đề ở trên để xem chi phí.",
    "Rough estimates; the Train tab shows the real figures.": "Ước tính sơ bộ; thẻ Huấn luyện cho thấy số liệu thật.",
    "load data on the Data tab to estimate": "nạp dữ liệu ở thẻ Dữ liệu để ước tính",
    "Pick one of the listed recipes.": "Hãy chọn một công thức trong danh sách.",
    "ℹ️ Q&A data: objective set back to **SFT**, and the settings sized to it.":
        "ℹ️ Dữ liệu hỏi-đáp: mục tiêu đặt lại thành **SFT**, và các thiết lập được chỉnh theo dữ liệu.",
    "Change anything.": "Bạn có thể đổi bất cứ thiết lập nào.",
    "the base model": "mô hình gốc",
    "a whole number": "một số nguyên",
    "a number": "một số",
    "a number, or nothing for automatic": "một số, hoặc để trống cho tự động",
    "ticked or not": "chọn hoặc không",
    "text": "chữ",
    "a value": "một giá trị",
    # Train tab
    "No run yet. Press **Start training**.": "Chưa có lượt nào. Bấm **Bắt đầu huấn luyện**.",
    "Stopping after the current step; a checkpoint is saved so you can resume.":
        "Sẽ dừng sau bước hiện tại; một điểm dừng được lưu để bạn có thể tiếp tục.",
    "🔒 **Read-only demo:** starting and resuming runs is turned off here.":
        "🔒 **Bản trình diễn chỉ xem:** ở đây không bắt đầu hay tiếp tục lượt huấn luyện được.",
    "train loss": "sai số khi huấn luyện",
    "held-out loss": "sai số trên phần để riêng",
    "reward margin": "chênh lệch điểm thưởng",
    "chosen reward": "điểm thưởng câu được chọn",
    "rejected reward": "điểm thưởng câu bị loại",
    "reward (higher margin is better)": "điểm thưởng (chênh lệch cao hơn là tốt hơn)",
    "Loss (lower is better)": "Sai số (thấp hơn là tốt hơn)",
    "Loss and reward margin": "Sai số và chênh lệch điểm thưởng",
    "step": "bước",
    "loss": "sai số",
    "queued": "đang chờ",
    "running": "đang chạy",
    "stopping": "đang dừng",
    "stopped": "đã dừng",
    "failed": "thất bại",
    "done": "xong",
    "interrupted": "bị ngắt",
    "waiting to start": "đang chờ bắt đầu",
    "reading the data and loading the model": "đang đọc dữ liệu và nạp mô hình",
    "drafting extra examples": "đang soạn thêm ví dụ",
    "training": "đang huấn luyện",
    "saving the weights": "đang lưu trọng số",
    "answering the held-out questions": "đang trả lời các câu hỏi để riêng",
    "Waiting to start": "Đang chờ bắt đầu",
    "Reading the data and loading the model": "Đang đọc dữ liệu và nạp mô hình",
    "Drafting extra examples": "Đang soạn thêm ví dụ",
    "Training": "Đang huấn luyện",
    "Saving the weights": "Đang lưu trọng số",
    "Answering the held-out questions": "Đang trả lời các câu hỏi để riêng",
    "Preparing": "Đang chuẩn bị",
    "Waiting to start...": "Đang chờ bắt đầu...",
    "Reading the data and loading the model...": "Đang đọc dữ liệu và nạp mô hình...",
    "Starting training...": "Đang bắt đầu huấn luyện...",
    "Saving the weights...": "Đang lưu trọng số...",
    "Stopping after the current step...": "Sẽ dừng sau bước hiện tại...",
    "Evaluating held-out questions...": "Đang đánh giá trên các câu hỏi để riêng...",
    "Answering the held-out questions with the base and the tuned model...":
        "Đang trả lời các câu hỏi để riêng bằng mô hình gốc và mô hình đã tinh chỉnh...",
    "Held-out evaluation ready": "Đã có kết quả đánh giá trên phần để riêng",
    "The held-out evaluation was skipped for the next run: press Evaluate on the Evaluate tab for it.":
        "Việc đánh giá trên phần để riêng được bỏ qua để nhường cho lượt kế tiếp: bấm Đánh giá ở thẻ Đánh giá để "
        "làm lại.",
    "Stopped while drafting, before the first step: nothing was trained. Start a new run to train; the drafts "
    "finished so far are reused.":
        "Đã dừng khi đang soạn, trước bước đầu tiên: chưa học gì. Hãy bắt đầu một lượt mới; các bản soạn đã xong "
        "sẽ được dùng lại.",
    "Out of memory. Lower training.batch_size or data.max_length, turn on gradient checkpointing, or use LoRA/QLoRA "
    "instead of a full fine-tune.":
        "Hết bộ nhớ. Giảm kích thước lô hoặc độ dài tối đa, bật tính lại kích hoạt, hoặc dùng LoRA/QLoRA thay cho "
        "tinh chỉnh toàn bộ.",
    "The disk is full. Free some space (old runs can be deleted) and resume the run.":
        "Ổ đĩa đã đầy. Hãy giải phóng chỗ trống (có thể xóa các lượt cũ) rồi tiếp tục lượt huấn luyện.",
    "No data loaded": "Chưa nạp dữ liệu",
    "Train for more epochs": "Huấn luyện thêm lượt học",
    "Raise the learning rate (e.g. 1e-3 for LoRA on small models)":
        "Tăng tốc độ học (ví dụ 1e-3 cho LoRA trên mô hình nhỏ)",
    "run": "lượt",
    "base": "gốc",
    "state": "trạng thái",
    "data": "dữ liệu",
    "method": "phương pháp",
    "epochs": "lượt học",
    "LR": "tốc độ học",
    "seconds": "giây",
    "created": "tạo lúc",
    "Training...": "Đang huấn luyện...",
    "Questions to try: held out from training": "Câu hỏi để thử: để riêng, không dùng để huấn luyện",
    "Questions to try: yours in other words, never trained on": "Câu hỏi để thử: câu của bạn hỏi bằng lời khác, "
                                                                "chưa từng học",
    "Questions to try: from training (nothing was held out)": "Câu hỏi để thử: từ dữ liệu huấn luyện (không để "
                                                              "riêng câu nào)",
    "No data loaded. Upload a file on the Data tab (or press 'Load sample') first.":
        "Chưa nạp dữ liệu. Hãy tải lên một tệp ở thẻ Dữ liệu (hoặc bấm 'Nạp dữ liệu mẫu') trước.",
    "This is a preference file (prompt, chosen, rejected): set the objective to dpo or orpo on the Model & method "
    "tab.":
        "Đây là tệp so sánh (prompt, chosen, rejected): hãy đặt mục tiêu là dpo hoặc orpo ở thẻ Mô hình & phương "
        "pháp.",
    "No run chosen. Pick one from the list of runs.": "Chưa chọn lượt nào. Hãy chọn một lượt trong danh sách.",
    "Give the repository as owner/name, e.g. my-team/ferry-assistant.":
        "Hãy ghi kho theo dạng chủ/tên, ví dụ my-team/ferry-assistant.",
    "Paste a Hugging Face access token with write permission.": "Hãy dán một mã truy cập Hugging Face có quyền ghi.",
    "Type a question first.": "Hãy gõ một câu hỏi trước.",
    "temperature: give a number from 0 to 2.": "nhiệt độ: hãy nhập một số từ 0 đến 2.",
    "Pushing to the Hub": "Đang đưa lên Hub",
    # Chat tab
    "Questions to try": "Câu hỏi để thử",
    "Preference-tuned (after DPO/ORPO)": "Đã tinh chỉnh theo so sánh (sau DPO/ORPO)",
    "⏳ Loading the model (the first question after picking a run takes a few seconds), or waiting a moment while "
    "it finishes another request...":
        "⏳ Đang nạp mô hình (câu hỏi đầu tiên sau khi chọn một lượt mất vài giây), hoặc chờ một chút trong khi mô "
        "hình xong một yêu cầu khác...",
    # Evaluate tab
    "No evaluation yet: press **Evaluate** above.": "Chưa đánh giá: bấm **Đánh giá** ở trên.",
    "Pick a finished run.": "Hãy chọn một lượt đã xong.",
    "Pick a finished run first.": "Hãy chọn một lượt đã xong trước.",
    "This run has no trained weights yet; wait for it to finish or resume it.":
        "Lượt này chưa có trọng số đã huấn luyện; hãy chờ nó xong hoặc tiếp tục nó.",
    "⏳ Reading the questions and loading the model...": "⏳ Đang đọc câu hỏi và nạp mô hình...",
    "The scores come when every question is answered.": "Điểm số có khi mọi câu hỏi đã được trả lời.",
    "answering with the base and the tuned model": "đang trả lời bằng mô hình gốc và mô hình đã tinh chỉnh",
    "asking general questions": "đang hỏi các câu hỏi chung",
    "There are no questions to answer.": "Không có câu hỏi nào để trả lời.",
    "Your upload was too small to hold questions out, so Studio reworded each of your questions and kept the "
    "rewording out of training: these test whether the tuned model answers your questions asked in other words.":
        "Tệp của bạn quá nhỏ để để riêng câu hỏi, nên Studio diễn đạt lại mỗi câu hỏi của bạn và giữ cách diễn đạt "
        "đó ngoài dữ liệu huấn luyện: chúng kiểm tra xem mô hình đã tinh chỉnh có trả lời được câu hỏi của bạn khi "
        "hỏi bằng lời khác không.",
    "This run held out no examples, so these are its own training questions: they show what it recalls, not how "
    "it generalises. Upload paraphrased questions to test that.":
        "Lượt này không để riêng ví dụ nào, nên đây là chính các câu hỏi huấn luyện: chúng cho thấy mô hình nhớ gì, "
        "không cho thấy nó khái quát ra sao. Hãy tải lên các câu hỏi diễn đạt lại để kiểm tra điều đó.",
    "The file has no reference answers, so the answers are not scored; compare them by reading.":
        "Tệp không có đáp án, nên các câu trả lời không được chấm điểm; hãy đọc để so sánh.",
    "your questions asked in other words": "câu hỏi của bạn hỏi bằng lời khác",
    "your questions asked in other words (never trained on)": "câu hỏi của bạn hỏi bằng lời khác (chưa từng học)",
    "the questions it was trained on (recall only: not a test of other wordings)":
        "các câu hỏi nó đã học (chỉ kiểm tra trí nhớ: không kiểm tra cách hỏi khác)",
    "the held-out questions": "các câu hỏi để riêng",
    "these questions": "các câu hỏi này",
    "held-out split": "phần để riêng",
    "training questions (recall; nothing was held out)":
        "câu hỏi huấn luyện (kiểm tra trí nhớ; không để riêng câu nào)",
    "Metric": "Chỉ số",
    "Base": "Gốc",
    "Tuned": "Đã tinh chỉnh",
    "Change": "Thay đổi",
    "Check": "Kiểm tra",
    "Exact match (%)": "Khớp chính xác (%)",
    "Contains answer (%)": "Có chứa đáp án (%)",
    "ROUGE-L (x100)": "ROUGE-L (x100, độ trùng từ)",
    "BLEU (x100)": "BLEU (x100, độ trùng cụm từ)",
    "⚠ States a wrong number or code (%)": "⚠ Nói sai một số hoặc mã (%)",
    "Eval loss (held-out)": "Sai số (phần để riêng)",
    "Perplexity (held-out)": "Độ bối rối (phần để riêng)",
    "General questions right (%)": "Câu hỏi chung trả lời đúng (%)",
    "Repeats taught answers (%)": "Lặp lại câu trả lời đã học (%)",
    "Train fewer epochs or with a lower learning rate, or mix some general Q&A into the data.":
        "Hãy huấn luyện ít lượt học hơn hoặc với tốc độ học thấp hơn, hoặc trộn thêm hỏi-đáp chung vào dữ liệu.",
    # Runs & export tab
    "your rows": "hàng của bạn",
    "added by Studio": "Studio thêm vào",
    "Loss by step": "Sai số theo bước",
    "Pick two or more runs to see the settings that differ and the questions that changed.": "Hãy chọn hai lượt trở "
    "lên để xem các thiết lập khác nhau và những câu hỏi đã thay đổi.",
    "None of these runs has been evaluated on held-out questions yet.": "Chưa lượt nào trong số này được đánh giá "
    "trên các câu hỏi kiểm tra.",
    "The recipes are the same.": "Các công thức giống nhau.",
    "Pick at least two runs to compare.": "Hãy chọn ít nhất hai lượt để so sánh.",
    "Ask a question first: the mark is for the tuned model's last reply.": "Hãy đặt câu hỏi trước: đánh dấu là cho "
    "câu trả lời gần nhất của mô hình sau tinh chỉnh.",
    "✅ Kept with this run's corrections: the Evaluate tab's **Train again with my corrections** uses it.": "✅ Đã lưu "
    "vào các chỗ sửa của lượt này: nút **Huấn luyện lại với các chỗ sửa của tôi** ở thẻ Đánh giá sẽ dùng nó.",
    "No answers marked yet: click a row of the table above.": "Chưa đánh dấu câu trả lời nào: hãy bấm vào một hàng "
    "của bảng phía trên.",
    "Type the right answer for a wrong one (the box starts with the model's answer to edit).": "Hãy gõ câu trả lời "
    "đúng cho câu sai (ô này bắt đầu bằng câu trả lời của mô hình để bạn sửa).",
    "The correction is the model's own answer: change it to the right one, or mark it right.": "Chỗ sửa giống hệt "
    "câu trả lời của mô hình: hãy đổi thành câu đúng, hoặc đánh dấu là đúng.",
    "The question is empty: mark an answer from the table or the chat.": "Câu hỏi trống: hãy đánh dấu một câu trả "
    "lời từ bảng hoặc từ trò chuyện.",
    "No wrong answers with corrections yet: mark some first.": "Chưa có câu trả lời sai nào kèm chỗ sửa: hãy đánh "
    "dấu vài câu trước.",
    "setting": "thiết lập",
    "held-out questions answered": "câu hỏi kiểm tra trả lời đúng",
    "forgetting check": "kiểm tra quên",
    "change": "thay đổi",
    "question": "câu hỏi",
    "reference": "đáp án",
    "before": "trước",
    "after": "sau",
    "improved": "tốt hơn",
    "regressed": "kém đi",
    "still wrong": "vẫn sai",
    "still right": "vẫn đúng",
    "not checked": "không kiểm được",
    "not evaluated": "chưa đánh giá",
    "flagged": "bị cảnh báo",
    "not run": "chưa chạy",
    "⏳ Starting the export...": "⏳ Đang bắt đầu xuất...",
    "loading the base model and merging the adapter into it": "đang nạp mô hình gốc và gộp adapter vào",
    "saving the merged model": "đang lưu mô hình đã gộp",
    "checking the GGUF file against the merged model": "đang kiểm tra tệp GGUF so với mô hình đã gộp",
    "zipping the files for download": "đang nén các tệp để tải về",
    # Errors and refusals
    "Waiting in the queue.": "Đang chờ trong hàng đợi.",
    "⏳ Asking the judge...": "⏳ Đang hỏi người chấm...",
    "The exact-fact check above stays the measure; read the wrong and partly ones.":
        "Phép kiểm tra dữ kiện chính xác ở trên vẫn là thước đo; hãy đọc các câu sai và đúng một phần.",
    "No judge is set: give an OpenAI-compatible endpoint and a model name (or set STUDIO_JUDGE_ENDPOINT and "
    "STUDIO_JUDGE_MODEL for everyone).": "Chưa đặt người chấm: hãy cho một endpoint tương thích OpenAI và tên mô "
    "hình (hoặc đặt STUDIO_JUDGE_ENDPOINT và STUDIO_JUDGE_MODEL cho mọi người).",
    "the run training now": "lượt đang huấn luyện",
    "Starting...": "Đang bắt đầu...",
    "Taken out of the queue before it started.": "Đã rút khỏi hàng đợi trước khi bắt đầu.",
    "Pick a run that is waiting in the queue.": "Hãy chọn một lượt đang chờ trong hàng đợi.",
    "No runs are waiting in the queue.": "Không có lượt nào đang chờ trong hàng đợi.",
    "No run of this sweep has answered its held-out questions yet. Wait for it, then try again.":
        "Chưa lượt nào của lần thử này trả lời các câu hỏi để riêng. Hãy chờ, rồi thử lại.",
    "The rest are waiting or training: press ↻ Refresh later.":
        "Các lượt còn lại đang chờ hoặc đang huấn luyện: lát nữa hãy bấm ↻ Làm mới.",
    "Press **Use the best run's settings** to train with them.":
        "Bấm **Dùng thiết lập của lượt tốt nhất** để huấn luyện với chúng.",
    "Load data on the Data tab to see the runs and the time they take.":
        "Hãy nạp dữ liệu ở thẻ Dữ liệu để xem các lượt và thời gian của chúng.",
    "Each value once: the same value twice trains the same run twice.":
        "Mỗi giá trị một lần: cùng một giá trị hai lần là huấn luyện cùng một lượt hai lần.",
    "Something went wrong": "Có lỗi xảy ra",
}

PATTERNS = [
    ("{n1} of {n2}", "{n1} trên {n2}"),
    ("{n1} answers marked: {n2} wrong with the right answer, {n3} right. The wrong ones go into the next "
     "**Train again**.", "Đã đánh dấu {n1} câu trả lời: {n2} câu sai kèm câu đúng, {n3} câu đúng. Các câu sai sẽ "
     "được đưa vào lần **Huấn luyện lại** tiếp theo."),
    ("{n1} answer marked: {n2} wrong with the right answer, {n3} right. The wrong ones go into the next "
     "**Train again**.", "Đã đánh dấu {n1} câu trả lời: {n2} câu sai kèm câu đúng, {n3} câu đúng. Các câu sai sẽ "
     "được đưa vào lần **Huấn luyện lại** tiếp theo."),
    ("✅ Started run **{run}** on your data with the corrections in it. Watch it on the Train tab; when it is done, "
     "pick both runs under **Compare runs** on the Runs & export tab.", "✅ Đã bắt đầu lượt **{run}** trên dữ liệu "
     "của bạn có kèm các chỗ sửa. Theo dõi nó ở thẻ Huấn luyện; khi xong, hãy chọn cả hai lượt trong **So sánh các "
     "lượt** ở thẻ Các lượt & xuất."),
    ("Most held-out questions answered: **{run}**.", "Trả lời đúng nhiều câu hỏi kiểm tra nhất: **{run}**."),
    ("Most held-out questions answered: **{run}**. The recipes are the same.",
     "Trả lời đúng nhiều câu hỏi kiểm tra nhất: **{run}**. Các công thức giống nhau."),
    # Durations and counts first: they are the fields of many other messages.
    ("{n1} min {n2} s", "{n1} phút {n2} giây"),
    ("{n1} h {n2} min", "{n1} giờ {n2} phút"),
    ("{n} s", "{n} giây"),
    # Data tab
    ("{n1} of {n2} rows usable", "{n1} trên {n2} hàng dùng được"),
    ("{n1} of {n2} rows usable.", "{n1} trên {n2} hàng dùng được."),
    ("{n1} of {n2} pairs usable", "{n1} trên {n2} cặp dùng được"),
    ("{n1} of {n2} pairs usable.", "{n1} trên {n2} cặp dùng được."),
    ("{n1} of {n2} {noun} usable; {rest}", "{n1} trên {n2} {noun} dùng được; {rest}"),
    ("{n} unusable: {rows}", "{n} không dùng được: {rows}"),
    ("{n} warnings.", "{n} cảnh báo."),
    ("{n} warning.", "{n} cảnh báo."),
    ("{n} warnings", "{n} cảnh báo"),
    ("{n} warning", "{n} cảnh báo"),
    ("**{name}** · {kind} · format **{fmt}**", "**{name}** · {kind} · định dạng **{fmt}**"),
    ("Columns: {mapping}", "Các cột: {mapping}"),
    ("{n1} of {n2} examples longer than max_length would be cut", "{n1} trên {n2} ví dụ dài hơn độ dài tối đa sẽ "
     "bị cắt"),
    ("All {n} examples fit in max_length", "Cả {n} ví dụ đều vừa độ dài tối đa"),
    ("max_length {n}", "độ dài tối đa {n}"),
    ("⚠️ {n} examples would be cut at max_length {n2}: raise it on the Model & method tab, or shorten those rows.",
     "⚠️ {n} ví dụ sẽ bị cắt ở độ dài tối đa {n2}: hãy tăng nó ở thẻ Mô hình & phương pháp, hoặc rút ngắn các hàng "
     "đó."),
    ("⚠️ {n} example would be cut at max_length {n2}: raise it on the Model & method tab, or shorten those rows.",
     "⚠️ {n} ví dụ sẽ bị cắt ở độ dài tối đa {n2}: hãy tăng nó ở thẻ Mô hình & phương pháp, hoặc rút ngắn hàng "
     "đó."),
    ("**{name}** is a document, not a table of questions and answers. Studio can draft pairs from it for you to "
     "review: use **Draft pairs from a document**, opened just below.",
     "**{name}** là một tài liệu, không phải bảng câu hỏi và câu trả lời. Studio có thể soạn các cặp từ đó để bạn "
     "xem lại: dùng **Soạn các cặp từ một tài liệu**, đã mở ngay bên dưới."),
    ("✅ {n} reviewed pairs loaded as your training data (see above).{rest}",
     "✅ Đã nạp {n} cặp đã duyệt làm dữ liệu huấn luyện (xem ở trên).{rest}"),
    ("✅ {n} reviewed pair loaded as your training data (see above).{rest}",
     "✅ Đã nạp {n} cặp đã duyệt làm dữ liệu huấn luyện (xem ở trên).{rest}"),
    ("{n} rows without a question or an answer left out.", "{n} hàng thiếu câu hỏi hoặc câu trả lời bị bỏ ra."),
    ("{n} row without a question or an answer left out.", "{n} hàng thiếu câu hỏi hoặc câu trả lời bị bỏ ra."),
    ("**{name}**: {n} passages to draft questions about.", "**{name}**: {n} đoạn để soạn câu hỏi."),
    ("**{name}**: {n} passage to draft questions about.", "**{name}**: {n} đoạn để soạn câu hỏi."),
    ("**{n} draft pairs** to review · {n2} dropped drafts", "**{n} cặp đã soạn** để xem lại · {n2} bản soạn bị bỏ"),
    ("**{n} draft pair** to review · {n2} dropped drafts", "**{n} cặp đã soạn** để xem lại · {n2} bản soạn bị bỏ"),
    ("**{n} draft pairs** to review · {n2} dropped draft", "**{n} cặp đã soạn** để xem lại · {n2} bản soạn bị bỏ"),
    ("**{n} draft pair** to review · {n2} dropped draft", "**{n} cặp đã soạn** để xem lại · {n2} bản soạn bị bỏ"),
    ("Cannot load the tokenizer of '{base}': {why}", "Không nạp được bộ tách từ của '{base}': {why}"),
    ("{role} column", "cột {role}"),
    ("{role} ← `{code}`", "{role} ← `{code}`"),
    # Model tab
    ("ℹ️ Sized to your {n} training examples: {rest}. Change anything.",
     "ℹ️ Đã chỉnh theo {n} ví dụ huấn luyện của bạn: {rest}. Bạn có thể đổi bất cứ thiết lập nào."),
    ("{n} epochs", "{n} lượt học"),
    ("learning rate {n}", "tốc độ học {n}"),
    ("batch {n}", "lô {n}"),
    ("{n} rewrites of each question by {who}", "{n} cách viết lại mỗi câu hỏi bởi {who}"),
    ("{n} rule-based rewordings of each", "{n} cách diễn đạt lại theo quy tắc cho mỗi câu"),
    ("{n} general answers kept", "giữ {n} câu trả lời chung"),
    ("ℹ️ Preference data: objective set to **DPO**, with {n1} epochs, learning rate {n2}, batch {n3} (as in "
     "{recipe}). Pick ORPO to learn the chosen answers too, and a finished SFT run under *Start from run* to polish "
     "it.",
     "ℹ️ Dữ liệu so sánh: mục tiêu đặt thành **DPO**, với {n1} lượt học, tốc độ học {n2}, lô {n3} (như trong "
     "{recipe}). Chọn ORPO để học cả các câu được chọn, và một lượt SFT đã xong ở *Bắt đầu từ lượt* để trau chuốt "
     "thêm."),
    ("- Trainable parameters: **{n1}** of {n2} ({n3}%)", "- Tham số được học: **{n1}** trên {n2} ({n3}%)"),
    ("- Peak memory: **~{size}**", "- Bộ nhớ cao nhất: **~{size}**"),
    ("- Training time: **{time}**", "- Thời gian huấn luyện: **{time}**"),
    ("<small>Rough estimates; the Train tab shows the real figures.</small>",
     "<small>Ước tính sơ bộ; thẻ Huấn luyện cho thấy số liệu thật.</small>"),
    ("~{t} on this machine, after ~{t2} drafting extra examples", "~{t} trên máy này, sau ~{t2} soạn thêm ví dụ"),
    ("~{t} on this machine", "~{t} trên máy này"),
    ("{n} min", "{n} phút"),
    ("{n} h", "{n} giờ"),
    ("{n} KB", "{n} KB"),
    ("{n} MB", "{n} MB"),
    ("{n} GB", "{n} GB"),
    ("✅ Loaded {name}.", "✅ Đã nạp {name}."),
    ("❌ Cannot read that file: {why}", "❌ Không đọc được tệp đó: {why}"),
    ("The recipe was not loaded (your form is unchanged):\n{problems}",
     "Chưa nạp công thức (biểu mẫu của bạn giữ nguyên):\n{problems}"),
    ("⚠ {label}: type {kind} here.", "⚠ {label}: hãy nhập {kind} ở đây."),
    ("{label}: type {kind} here.", "{label}: hãy nhập {kind} ở đây."),
    ("- ❌ {problem}", "- ❌ {problem}"),
    ("- ⚠️ {problem}", "- ⚠️ {problem}"),
    # Train tab
    ("Started run {run}.", "Đã bắt đầu lượt {run}."),
    ("Fix the recipe first (Model & method tab):\n{problems}",
     "Hãy sửa công thức trước (thẻ Mô hình & phương pháp):\n{problems}"),
    ("step {n1}/{n2}", "bước {n1}/{n2}"),
    ("epoch {n}", "lượt học {n}"),
    ("{n} tokens/s", "{n} token/giây"),
    ("about {n} s left", "còn khoảng {n} giây"),
    ("loss {n}", "sai số {n}"),
    ("{t} since Start", "{t} từ lúc bấm Bắt đầu"),
    ("{icon} **{run}**: {state}. {message}", "{icon} **{run}**: {state}. {message}"),
    ("**{run}**: {state}. {message}", "**{run}**: {state}. {message}"),
    ("⚠ **Warning:** {warning}", "⚠ **Cảnh báo:** {warning}"),
    ("Loss and reward margin: {run}", "Sai số và chênh lệch điểm thưởng: {run}"),
    ("Loss: {run}", "Sai số: {run}"),
    ("Finished: {wall}. {verdict}.", "Xong: {wall}. {verdict}."),
    ("Finished: {wall}.", "Xong: {wall}."),
    ("Finished in {n} s.", "Xong trong {n} giây."),
    ("{t} from Start: {phases}", "{t} tính từ lúc bấm Bắt đầu: {phases}"),
    ("waiting {t}", "chờ {t}"),
    ("preparing {t}", "chuẩn bị {t}"),
    ("drafting {t}", "soạn ví dụ {t}"),
    ("training {t}", "huấn luyện {t}"),
    ("saving {t}", "lưu {t}"),
    ("evaluating {t}", "đánh giá {t}"),
    ("{message} (begun when the data was loaded)", "{message} (bắt đầu từ lúc nạp dữ liệu)"),
    ("{message} Answering the held-out questions with the base and the tuned model: {n1} of {n2} done...",
     "{message} Đang trả lời các câu hỏi để riêng bằng mô hình gốc và mô hình đã tinh chỉnh: xong {n1} trên {n2}..."),
    ("{message} Checking general questions for forgetting...",
     "{message} Đang kiểm tra các câu hỏi chung xem có quên không..."),
    ("{message} Evaluating held-out questions...", "{message} Đang đánh giá trên các câu hỏi để riêng..."),
    ("Trainable parameters: {n1} of {n2} ({n3}%).", "Tham số được học: {n1} trên {n2} ({n3}%)."),
    ("Stopped at step {n}. Resume to continue.", "Đã dừng ở bước {n}. Bấm Tiếp tục để học tiếp."),
    ("Resuming from {where}.", "Tiếp tục từ {where}."),
    ("Done in {n} s. Weights in {where}.", "Xong trong {n} giây. Trọng số ở {where}."),
    ("Training failed: {kind}: {why}", "Huấn luyện thất bại: {kind}: {why}"),
    ("Failed: {why}", "Thất bại: {why}"),
    ("Held-out evaluation failed: {why}", "Đánh giá trên phần để riêng thất bại: {why}"),
    ("{message} (held-out evaluation failed: {why})", "{message} (đánh giá trên phần để riêng thất bại: {why})"),
    ("{message} The held-out evaluation was skipped for the next run: press Evaluate on the Evaluate tab for it.",
     "{message} Việc đánh giá trên phần để riêng được bỏ qua để nhường cho lượt kế tiếp: bấm Đánh giá ở thẻ Đánh giá "
     "để làm lại."),
    ("Drafting extra examples: {n1} of {n2} questions, about {t} left...",
     "Đang soạn thêm ví dụ: {n1} trên {n2} câu hỏi, còn khoảng {t}..."),
    ("Waiting in the queue ({n1} of {n2}): it starts after {run}.",
     "Đang chờ trong hàng đợi ({n1} trên {n2}): bắt đầu sau {run}."),
    ("Run {run} waits in the queue ({n1} of {n2}).", "Lượt {run} đang chờ trong hàng đợi ({n1} trên {n2})."),
    ("Run {run} was taken out of the queue.", "Lượt {run} đã được rút khỏi hàng đợi."),
    ("Run {run} is not waiting in the queue (it may have started already: Stop it).",
     "Lượt {run} không còn chờ trong hàng đợi (có thể nó đã bắt đầu: hãy Dừng nó)."),
    ("Give 2 to 4 values to try, not {n}.", "Hãy cho 2 đến 4 giá trị để thử, không phải {n}."),
    ("{n} runs", "{n} lượt"),
    ("⏳ The judge graded {n1} of {n2} answers ({t} so far)...",
     "⏳ Người chấm đã chấm {n1} trên {n2} câu trả lời (đến giờ {t})..."),
    ("The judge ({what}) graded {n1} answers: {n2} correct, {n3} partly, {n4} wrong.",
     "Người chấm ({what}) đã chấm {n1} câu trả lời: {n2} đúng, {n3} đúng một phần, {n4} sai."),
    ("Run {run} has no held-out answers to judge yet: press Evaluate first.",
     "Lượt {run} chưa có câu trả lời để riêng nào để chấm: hãy bấm Đánh giá trước."),
    ("{what}; {n1} of {n2} runs finished; best so far {run}", "{what}; {n1} trên {n2} lượt đã xong; tốt nhất đến giờ "
     "là {run}"),
    ("{what}; {n1} of {n2} runs finished", "{what}; {n1} trên {n2} lượt đã xong"),
    ("Queued {n} runs ({run}).", "Đã xếp {n} lượt vào hàng đợi ({run})."),
    ("{n} runs are already waiting, the most this studio queues (STUDIO_MAX_QUEUE). Cancel one or wait for the "
     "queue to move.", "Đã có {n} lượt đang chờ, nhiều nhất studio này cho xếp hàng (STUDIO_MAX_QUEUE). Hãy rút bớt "
     "một lượt hoặc chờ hàng đợi chạy."),
    ("{what}: about {t} on this machine (training {t1}, drafting once {t2}, answering the held-out questions {t3}).",
     "{what}: khoảng {t} trên máy này (huấn luyện {t1}, soạn thêm ví dụ một lần {t2}, trả lời các câu hỏi để riêng "
     "{t3})."),
    ("✅ Queued {n} runs as **{run}**.", "✅ Đã xếp {n} lượt vào hàng đợi với tên **{run}**."),
    ("When they have answered their held-out questions, the Runs & export tab compares them and names the best.",
     "Khi chúng đã trả lời các câu hỏi để riêng, thẻ Các lượt & xuất sẽ so sánh và nêu tên lượt tốt nhất."),
    ("✅ The Model & method form now has the settings of **{run}**, the best run of the sweep. Press Start training "
     "to train with them.", "✅ Biểu mẫu Mô hình & phương pháp giờ có thiết lập của **{run}**, lượt tốt nhất của lần "
     "thử. Bấm Bắt đầu huấn luyện để huấn luyện với chúng."),
    ("A run is already training ({run}). Stop it or wait for it to finish.",
     "Một lượt khác đang huấn luyện ({run}). Hãy dừng nó hoặc chờ nó xong."),
    ("Run {run} is {state}; only stopped, interrupted or failed runs can be resumed.",
     "Lượt {run} đang ở trạng thái {state}; chỉ tiếp tục được lượt đã dừng, bị ngắt hoặc thất bại."),
    ("The loss became NaN or infinite at step {n}: training diverged. Lower the learning rate (for example to a "
     "tenth) and start again.",
     "Sai số thành NaN hoặc vô cực ở bước {n}: việc huấn luyện bị phân kỳ. Hãy giảm tốc độ học (ví dụ còn một "
     "phần mười) và bắt đầu lại."),
    ("The loss is rising sharply ({n1} at the start, {n2} now): training is diverging. Lower the learning rate (for "
     "example to a tenth) and start again.",
     "Sai số tăng vọt ({n1} lúc đầu, {n2} bây giờ): việc huấn luyện đang phân kỳ. Hãy giảm tốc độ học (ví dụ còn "
     "một phần mười) và bắt đầu lại."),
    ("Loss is not falling ({n1} at the start, {n2} at step {n3}): the model is not learning. {fix}, and check that "
     "the data's answer column holds the answers.",
     "Sai số không giảm ({n1} lúc đầu, {n2} ở bước {n3}): mô hình không học được. {fix}, và kiểm tra cột câu trả "
     "lời của dữ liệu có đúng là câu trả lời không."),
    ("The training loss is near zero: the model knows its training answers by heart. {rest}",
     "Sai số huấn luyện gần bằng 0: mô hình thuộc lòng các câu trả lời huấn luyện. {rest}"),
    ("The model is memorising the training answers: training loss is near zero while the held-out loss rose from "
     "{n1} (step {n2}) to {n3}. {rest}",
     "Mô hình đang học thuộc lòng các câu trả lời huấn luyện: sai số huấn luyện gần bằng 0 trong khi sai số trên "
     "phần để riêng tăng từ {n1} (bước {n2}) lên {n3}. {rest}"),
    # Chat tab
    ("⏳ Waiting for the {side} model to finish: both sides share one copy of the weights in memory, so they answer "
     "one after the other.",
     "⏳ Đang chờ mô hình {side} trả lời xong: hai bên dùng chung một bản trọng số trong bộ nhớ, nên lần lượt trả "
     "lời."),
    ("**Expected answer (from your data):** {answer}", "**Câu trả lời mong đợi (từ dữ liệu của bạn):** {answer}"),
    ("{what} (one click away)", "{what} (bấm để hỏi)"),
    # Evaluate tab
    ("⏳ Loading the model, then {what}: 0 of {n1} done ({n2} s so far).",
     "⏳ Đang nạp mô hình, rồi {what}: xong 0 trên {n1} ({n2} giây đến giờ)."),
    ("⏳ {what}: {n1} of {n2} done, about {t} left ({t2} so far).",
     "⏳ {what}: xong {n1} trên {n2}, còn khoảng {t} ({t2} đến giờ)."),
    ("Answering with the base and the tuned model", "Đang trả lời bằng mô hình gốc và mô hình đã tinh chỉnh"),
    ("Asking general questions", "Đang hỏi các câu hỏi chung"),
    ("your file ({name})", "tệp của bạn ({name})"),
    ("Answers {what}: {n1} of {n2} (before training: {n3} of {n4})",
     "Trả lời đúng {what}: {n1} trên {n2} (trước khi huấn luyện: {n3} trên {n4})"),
    ("Evaluation on {source}: {n} questions.", "Đánh giá trên {source}: {n} câu hỏi."),
    ("Evaluation on {source}: {n} question.", "Đánh giá trên {source}: {n} câu hỏi."),
    ("says {value}; the reference says {reference}", "nói {value}; đáp án nói {reference}"),
    ("No sign of forgetting: general questions right {n1}% (base) vs {n2}% (tuned); taught answers repeated in {n3}% "
     "of general answers.",
     "Không thấy dấu hiệu quên kiến thức: câu hỏi chung trả lời đúng {n1}% (gốc) so với {n2}% (đã tinh chỉnh); câu "
     "trả lời đã học bị lặp lại trong {n3}% câu trả lời chung."),
    ("the tuned model answers {n1}% fewer general questions correctly than the base model and {n2}% of its answers "
     "to unrelated questions repeat taught answers.",
     "mô hình đã tinh chỉnh trả lời đúng ít hơn {n1}% câu hỏi chung so với mô hình gốc và {n2}% câu trả lời cho câu "
     "hỏi không liên quan lặp lại câu trả lời đã học."),
    ("the tuned model answers {n}% fewer general questions correctly than the base model.",
     "mô hình đã tinh chỉnh trả lời đúng ít hơn {n}% câu hỏi chung so với mô hình gốc."),
    ("{n}% of its answers to unrelated questions repeat taught answers.",
     "{n}% câu trả lời cho câu hỏi không liên quan lặp lại câu trả lời đã học."),
    ("Possible forgetting: {what}", "Có thể đã quên kiến thức: {what}"),
    ("the tuned model answers {n}% fewer general questions correctly than the base model",
     "mô hình đã tinh chỉnh trả lời đúng ít hơn {n}% câu hỏi chung so với mô hình gốc"),
    ("{n}% of its answers to unrelated questions repeat taught answers",
     "{n}% câu trả lời cho câu hỏi không liên quan lặp lại câu trả lời đã học"),
    ("{file} has {n1} questions; this studio answers at most {n2} in one evaluation (STUDIO_MAX_EVAL_QUESTIONS). "
     "Split the file.",
     "{file} có {n1} câu hỏi; studio này trả lời nhiều nhất {n2} câu mỗi lần đánh giá (STUDIO_MAX_EVAL_QUESTIONS). "
     "Hãy chia nhỏ tệp."),
    ("The evaluation file {file} does not exist.", "Tệp đánh giá {file} không tồn tại."),
    # Runs & export tab
    ("⏳ Step {n1} of {n2}: {step} ({t} so far).", "⏳ Bước {n1} trên {n2}: {step} ({t} đến giờ)."),
    ("✅ Ready in {t}: {name}.", "✅ Xong trong {t}: {name}."),
    ("writing the {quant} GGUF file and its Ollama Modelfile", "đang ghi tệp GGUF {quant} và Modelfile cho Ollama"),
    ("Pushed to {where}", "Đã đưa lên {where}"),
    ("{run} train", "{run} huấn luyện"),
    ("{run} held-out", "{run} để riêng"),
    ("{message} (begun when the data was loaded)", "{message} (bắt đầu từ lúc nạp dữ liệu)"),
    ("{doing}: {n1} of {n2} done, about {n3} s left.", "{doing}: xong {n1} trên {n2}, còn khoảng {n3} giây."),
    ("Drafting {n} rewrites of each question with the base model (once: later runs on the same data reuse them)...",
     "Đang soạn {n} cách viết lại mỗi câu hỏi bằng mô hình gốc (một lần: các lượt sau trên cùng dữ liệu dùng lại)..."),
    ("Drafting {n} rewrites of each question with the base model (once: later runs on the same data reuse them)",
     "Đang soạn {n} cách viết lại mỗi câu hỏi bằng mô hình gốc (một lần: các lượt sau trên cùng dữ liệu dùng lại)"),
    ("Asking {model} at {where} for {n} rewrites of each question (once: later runs on the same data reuse them)...",
     "Đang nhờ {model} ở {where} viết {n} cách viết lại mỗi câu hỏi (một lần: các lượt sau trên cùng dữ liệu dùng "
     "lại)..."),
    ("Asking {model} at {where} for {n} rewrites of each question (once: later runs on the same data reuse them)",
     "Đang nhờ {model} ở {where} viết {n} cách viết lại mỗi câu hỏi (một lần: các lượt sau trên cùng dữ liệu dùng "
     "lại)"),
    ("Answering {n} general questions with the base model, to keep its general answers...",
     "Đang trả lời {n} câu hỏi chung bằng mô hình gốc, để giữ các câu trả lời chung của nó..."),
    ("Answering {n} general questions with the base model, to keep its general answers",
     "Đang trả lời {n} câu hỏi chung bằng mô hình gốc, để giữ các câu trả lời chung của nó"),
    ("Added {n} rewritten questions in {n2} s.", "Đã thêm {n} câu hỏi viết lại trong {n2} giây."),
    ("Reused {n} rewritten questions drafted for an earlier run on the same data and settings.",
     "Dùng lại {n} câu hỏi viết lại đã soạn cho một lượt trước trên cùng dữ liệu và thiết lập."),
    ("Added {n} rewordings of the questions in other question forms.",
     "Đã thêm {n} cách diễn đạt lại các câu hỏi theo dạng câu hỏi khác."),
    ("Kept {n} rewordings of your questions out of training, to check the tuned model on questions asked in other "
     "words.",
     "Đã giữ {n} cách diễn đạt lại câu hỏi của bạn ngoài dữ liệu huấn luyện, để kiểm tra mô hình đã tinh chỉnh với "
     "câu hỏi hỏi bằng lời khác."),
    ("Kept {n} general answers in {n2} s.", "Đã giữ {n} câu trả lời chung trong {n2} giây."),
    ("Reused the base model's {n} answers to general questions from an earlier run with the same settings.",
     "Dùng lại {n} câu trả lời của mô hình gốc cho các câu hỏi chung từ một lượt trước có cùng thiết lập."),
    ("Answering the held-out questions with the base and the tuned model: {n1} of {n2} done...",
     "Đang trả lời các câu hỏi để riêng bằng mô hình gốc và mô hình đã tinh chỉnh: xong {n1} trên {n2}..."),
    ("The loss became {value} at step {n}: training diverged. Lower training.learning_rate (for example to a tenth) "
     "and start again.",
     "Sai số thành {value} ở bước {n}: việc huấn luyện bị phân kỳ. Hãy giảm tốc độ học (ví dụ còn một phần mười) "
     "và bắt đầu lại."),
    # The service's refusals
    ("The data cannot be trained on: {why}", "Không huấn luyện được trên dữ liệu này: {why}"),
    ("The preference data cannot be trained on with {objective}: {why}",
     "Không huấn luyện được dữ liệu so sánh với {objective}: {why}"),
    ("The recipe has problems:\n{problems}", "Công thức có vấn đề:\n{problems}"),
    ("Run {run} is not training, so there is nothing to stop.", "Lượt {run} không đang huấn luyện, nên không có gì để "
     "dừng."),
    ("Run {run} did not start from an SFT run, so there is no SFT model to compare.",
     "Lượt {run} không bắt đầu từ một lượt SFT, nên không có mô hình SFT để so sánh."),
    ("Run {run} has no trained weights yet. Wait for it to finish (or resume it).",
     "Lượt {run} chưa có trọng số đã huấn luyện. Hãy chờ nó xong (hoặc tiếp tục nó)."),
    ("Could not load run {run}: {why}", "Không nạp được lượt {run}: {why}"),
    ("Could not load the SFT adapter of run {run}: {why}", "Không nạp được adapter SFT của lượt {run}: {why}"),
    ("This is a read-only demo: {what} is turned off. Run Studio on your own machine to train.",
     "Đây là bản trình diễn chỉ xem: {what} đã tắt. Hãy chạy Studio trên máy của bạn để huấn luyện."),
    ("The question is {n1} characters long; this studio takes at most {n2} (STUDIO_MAX_PROMPT_CHARS). Shorten it.",
     "Câu hỏi dài {n1} ký tự; studio này nhận nhiều nhất {n2} (STUDIO_MAX_PROMPT_CHARS). Hãy rút ngắn."),
    ("The question is {n1} characters long; this studio keeps at most {n2} (STUDIO_MAX_PROMPT_CHARS). Shorten it.",
     "Câu hỏi dài {n1} ký tự; studio này chỉ lưu tối đa {n2} (STUDIO_MAX_PROMPT_CHARS). Hãy rút ngắn lại."),
    ("The model's answer is {n1} characters long; this studio keeps at most {n2} (STUDIO_MAX_PROMPT_CHARS). "
     "Shorten it.", "Câu trả lời của mô hình dài {n1} ký tự; studio này chỉ lưu tối đa {n2} "
     "(STUDIO_MAX_PROMPT_CHARS). Hãy rút ngắn lại."),
    ("The correction is {n1} characters long; this studio keeps at most {n2} (STUDIO_MAX_PROMPT_CHARS). "
     "Shorten it.", "Chỗ sửa dài {n1} ký tự; studio này chỉ lưu tối đa {n2} (STUDIO_MAX_PROMPT_CHARS). Hãy rút "
     "ngắn lại."),
    ("The conversation is {n1} characters long; this studio keeps at most {n2}. Press Clear and ask again.",
     "Cuộc trò chuyện dài {n1} ký tự; studio này giữ nhiều nhất {n2}. Bấm Xóa rồi hỏi lại."),
    # Errors
    ("Something went wrong ({kind}). Nothing was changed; the details are in the studio's log. Try again, and "
     "report it if it happens again.",
     "Có lỗi xảy ra ({kind}). Không có gì bị thay đổi; chi tiết nằm trong nhật ký của studio. Hãy thử lại, và báo "
     "lỗi nếu nó lặp lại."),
    # Markdown tables: each cell in turn.
    ("| {a} | {b} | {c} | {d} |", "| {a} | {b} | {c} | {d} |"),
    ("| {a} | {b} | {c} |", "| {a} | {b} | {c} |"),
    ("### {title}", "### {title}"),
    ("⚠ {text}", "⚠ {text}"),
    ("⚠️ {text}", "⚠️ {text}"),
    ("~{t}", "~{t}"),
]
