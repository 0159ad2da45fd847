// The announcement composer's merge-variable picker (own code, no library): the chosen
// variable ({first_name|friend}, {fields.county}) goes into the message at the cursor,
// replacing any selection. Without script the picker stays hidden and the hint below the
// message says what to type.
(function () {
  "use strict";
  document.querySelectorAll("[data-merge-target]").forEach(function (picker) {
    var target = document.getElementById(picker.getAttribute("data-merge-target"));
    var select = picker.querySelector("select");
    var button = picker.querySelector("[data-merge-insert]");
    if (!target || !select || !button) { return; }
    picker.hidden = false;
    button.addEventListener("click", function () {
      var text = select.value;
      if (!text) { select.focus(); return; }
      var start = target.selectionStart, end = target.selectionEnd;
      if (typeof start !== "number") { start = end = target.value.length; }
      target.setRangeText(text, start, end, "end");
      target.dispatchEvent(new Event("input", { bubbles: true }));
      target.focus();
      select.value = "";
    });
  });
}());
